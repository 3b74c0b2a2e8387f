-- The build of a built template a sandbox started from (or its fork's source did): a resume that
-- cold-boots it starts that build's start command again. Null for other sandboxes, and once the
-- build is gone.
ALTER TABLE sandboxes ADD COLUMN template_build_id text REFERENCES template_builds(id) ON DELETE SET NULL;
