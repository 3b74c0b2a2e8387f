-- The replica whose call an operation mark belongs to: once that replica is dead the mark is
-- stale at once (its call ended with it), without waiting out the transition deadline.
ALTER TABLE sandboxes ADD COLUMN operation_replica text;
