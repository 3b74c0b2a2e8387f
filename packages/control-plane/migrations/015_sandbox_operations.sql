-- An operation the control plane has written to a sandbox row (pause, resume) but whose host
-- call has not ended yet. The row already shows the operation's outcome; until the call ends
-- the host may still report the old state, which the reconciler must not copy back.
ALTER TABLE sandboxes ADD COLUMN operation text;
ALTER TABLE sandboxes ADD COLUMN operation_started_at timestamptz;
