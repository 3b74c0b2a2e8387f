-- Timestamps keep milliseconds (timestamptz(3)): what a JavaScript Date holds, so keyset
-- pagination cursors made from them compare exactly.
-- Teams own everything a caller can see; every query is scoped by team_id.
CREATE TABLE teams (
  id text PRIMARY KEY,
  name text NOT NULL,
  -- The team created by bootstrap: its keys may create teams and shared hosts.
  is_admin boolean NOT NULL DEFAULT false,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id text PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL DEFAULT '',
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

CREATE TABLE team_members (
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  PRIMARY KEY (team_id, user_id)
);

-- Only the sha256 of a key and its first characters (for display) are stored.
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL,
  prefix text NOT NULL,
  key_hash text NOT NULL UNIQUE,
  created_by text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  last_used_at timestamptz(3),
  revoked_at timestamptz(3)
);
CREATE INDEX api_keys_team ON api_keys (team_id);

-- A host with team_id NULL is shared by every team (created by the admin team).
CREATE TABLE hosts (
  id text PRIMARY KEY,
  team_id text REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL,
  state text NOT NULL CHECK (state IN ('pending', 'up', 'unreachable')),
  url text,
  agent_token text,
  credential_hash text UNIQUE,
  agent_host_id text,
  version text,
  vmm text,
  accel text,
  capacity_vcpus integer NOT NULL DEFAULT 0,
  capacity_memory_mib integer NOT NULL DEFAULT 0,
  capacity_disk_mib integer NOT NULL DEFAULT 0,
  allocated_vcpus integer NOT NULL DEFAULT 0,
  allocated_memory_mib integer NOT NULL DEFAULT 0,
  allocated_disk_mib integer NOT NULL DEFAULT 0,
  sandbox_count integer NOT NULL DEFAULT 0,
  templates jsonb NOT NULL DEFAULT '[]'::jsonb,
  last_seen_at timestamptz(3),
  registered_at timestamptz(3),
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX hosts_team ON hosts (team_id);

CREATE TABLE host_registration_tokens (
  id text PRIMARY KEY,
  host_id text NOT NULL REFERENCES hosts (id) ON DELETE CASCADE,
  token_hash text NOT NULL UNIQUE,
  expires_at timestamptz(3) NOT NULL,
  used_at timestamptz(3),
  created_at timestamptz(3) NOT NULL DEFAULT now()
);

-- Base templates (team_id NULL, served by hosts' images) and snapshot templates (a team's,
-- living on the host that made them under agent_name).
CREATE TABLE templates (
  id text PRIMARY KEY,
  team_id text REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL,
  kind text NOT NULL CHECK (kind IN ('base', 'snapshot')),
  host_id text REFERENCES hosts (id) ON DELETE CASCADE,
  agent_name text,
  source_sandbox_id text,
  base_template text,
  vcpus integer,
  memory_mib integer,
  disk_mib integer,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX templates_team_name ON templates (team_id, name);

CREATE TABLE sandboxes (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  host_id text REFERENCES hosts (id) ON DELETE SET NULL,
  template text NOT NULL,
  snapshot_id text,
  state text NOT NULL CHECK (state IN ('pending', 'running', 'paused', 'stopped', 'error', 'missing')),
  vcpus integer NOT NULL,
  memory_mib integer NOT NULL,
  disk_mib integer NOT NULL,
  timeout_sec integer NOT NULL,
  metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
  envd_access_token text NOT NULL,
  host_ip text,
  error text,
  expires_at timestamptz(3),
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  updated_at timestamptz(3) NOT NULL DEFAULT now(),
  stopped_at timestamptz(3)
);
CREATE INDEX sandboxes_team_created ON sandboxes (team_id, created_at, id);
CREATE INDEX sandboxes_host_state ON sandboxes (host_id, state);

CREATE TABLE audit_logs (
  id text PRIMARY KEY,
  team_id text,
  actor_type text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'host', 'system')),
  actor_id text,
  action text NOT NULL,
  resource_type text NOT NULL,
  resource_id text,
  result text NOT NULL CHECK (result IN ('success', 'failure')),
  error_code text,
  details jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_team_created ON audit_logs (team_id, created_at, id);

-- Per-team webhooks; the secret signs every delivery.
CREATE TABLE channels (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  name text NOT NULL,
  url text NOT NULL,
  secret text NOT NULL,
  events jsonb NOT NULL DEFAULT '[]'::jsonb,
  enabled boolean NOT NULL DEFAULT true,
  created_at timestamptz(3) NOT NULL DEFAULT now()
);
CREATE INDEX channels_team ON channels (team_id);

CREATE TABLE channel_deliveries (
  id text PRIMARY KEY,
  channel_id text NOT NULL REFERENCES channels (id) ON DELETE CASCADE,
  event_id text NOT NULL,
  event_type text NOT NULL,
  status text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  delivered_at timestamptz(3)
);
CREATE INDEX channel_deliveries_channel ON channel_deliveries (channel_id, created_at);
