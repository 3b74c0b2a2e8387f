-- What the inactivity timeout does (rows from before: unknown, so the default, pause),
-- and auto_resume: a paused sandbox is resumed by the first traffic that reaches it
-- through the proxy (e2b's lifecycle.autoResume; only with on_timeout pause).
ALTER TABLE sandboxes ADD COLUMN on_timeout text NOT NULL DEFAULT 'pause' CHECK (on_timeout IN ('destroy', 'pause'));
ALTER TABLE sandboxes ADD COLUMN auto_resume boolean NOT NULL DEFAULT false;
