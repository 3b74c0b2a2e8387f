-- Templates built from steps. A built template's sandboxes restore its build's snapshot,
-- held per host (template_build_hosts); each step's result is a snapshot cached per host by
-- the hash of its parent and inputs (template_step_cache); copy steps' archives are stored
-- by the control plane (template_files) so any host can build.
ALTER TABLE templates DROP CONSTRAINT IF EXISTS templates_kind_check;
ALTER TABLE templates ADD CONSTRAINT templates_kind_check CHECK (kind IN ('base', 'snapshot', 'built'));
ALTER TABLE templates ADD COLUMN build_id text;
ALTER TABLE templates ADD COLUMN env jsonb NOT NULL DEFAULT '{}';
ALTER TABLE templates ADD COLUMN default_user text;
ALTER TABLE templates ADD COLUMN default_workdir text;

CREATE TABLE template_builds (
  id text PRIMARY KEY,
  template_id text NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  status text NOT NULL CHECK (status IN ('waiting', 'building', 'ready', 'error')),
  -- null until the build is started (the E2B API creates a build, then starts it)
  spec jsonb,
  tags jsonb NOT NULL DEFAULT '[]',
  vcpus integer NOT NULL,
  memory_mib integer NOT NULL,
  disk_mib integer NOT NULL,
  host_id text REFERENCES hosts (id) ON DELETE SET NULL,
  sandbox_id text,
  step_keys jsonb NOT NULL DEFAULT '[]',
  steps_cached integer NOT NULL DEFAULT 0,
  env jsonb NOT NULL DEFAULT '{}',
  default_user text,
  default_workdir text,
  error_message text,
  error_step text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  started_at timestamptz(3),
  finished_at timestamptz(3)
);
CREATE INDEX template_builds_template ON template_builds (template_id, created_at);

CREATE TABLE template_build_logs (
  build_id text NOT NULL REFERENCES template_builds (id) ON DELETE CASCADE,
  seq integer NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  level text NOT NULL,
  step text NOT NULL DEFAULT '',
  message text NOT NULL,
  PRIMARY KEY (build_id, seq)
);

CREATE TABLE template_build_hosts (
  build_id text NOT NULL REFERENCES template_builds (id) ON DELETE CASCADE,
  host_id text NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  agent_name text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (build_id, host_id)
);

CREATE TABLE template_tags (
  template_id text NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
  tag text NOT NULL,
  build_id text NOT NULL REFERENCES template_builds (id) ON DELETE CASCADE,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (template_id, tag)
);

CREATE TABLE template_step_cache (
  host_id text NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  key text NOT NULL,
  agent_name text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  used_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (host_id, key)
);

CREATE TABLE template_files (
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  hash text NOT NULL,
  size bigint NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, hash)
);

-- Build VMs are sandboxes (placed, counted and reconciled like any other) that users do not list.
ALTER TABLE sandboxes ADD COLUMN build_id text;
