-- Sampled metrics of each running sandbox (the metrics sampler writes one row per sandbox per
-- tick). No foreign key to sandboxes: the history outlives the sandbox until retention drops it.
CREATE TABLE sandbox_metrics (
  sandbox_id text NOT NULL,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  ts timestamptz(3) NOT NULL,
  cpu_count integer NOT NULL,
  cpu_used_pct double precision NOT NULL,
  mem_used bigint NOT NULL,
  mem_total bigint NOT NULL,
  disk_used bigint NOT NULL,
  disk_total bigint NOT NULL
);
CREATE INDEX sandbox_metrics_sandbox_ts ON sandbox_metrics (sandbox_id, ts);
CREATE INDEX sandbox_metrics_team_ts ON sandbox_metrics (team_id, ts);
-- Retention deletes by age alone.
CREATE INDEX sandbox_metrics_ts ON sandbox_metrics (ts);

-- Each team's totals at each sampler tick: running sandboxes and what they were given.
-- sandbox_start_rate: sandboxes created per second since the team's previous row.
CREATE TABLE team_metrics (
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  ts timestamptz(3) NOT NULL,
  running_sandboxes integer NOT NULL,
  vcpus integer NOT NULL,
  memory_mib bigint NOT NULL,
  sandbox_start_rate double precision NOT NULL DEFAULT 0
);
CREATE INDEX team_metrics_team_ts ON team_metrics (team_id, ts);
CREATE INDEX team_metrics_ts ON team_metrics (ts);

-- The sampler finds sandboxes created in the last minutes (its start rate) across all teams.
CREATE INDEX sandboxes_created ON sandboxes (created_at);
