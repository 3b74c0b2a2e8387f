-- A paused sandbox with auto_resume is resumed by the first traffic that reaches it
-- through the proxy (e2b's lifecycle.autoResume; only with on-timeout pause).
ALTER TABLE sandboxes ADD COLUMN auto_resume boolean NOT NULL DEFAULT false;
