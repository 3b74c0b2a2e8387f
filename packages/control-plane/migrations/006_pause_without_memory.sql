-- Filesystem-only pause (e2b's keepMemory false): whether the inactivity timeout's pause keeps
-- memory (e2b's autoPauseMemory; only with on_timeout pause), and whether the sandbox is paused
-- without memory now (its resume cold-boots; traffic never auto-resumes it).
ALTER TABLE sandboxes ADD COLUMN on_timeout_keep_memory boolean NOT NULL DEFAULT true;
ALTER TABLE sandboxes ADD COLUMN paused_without_memory boolean NOT NULL DEFAULT false;
