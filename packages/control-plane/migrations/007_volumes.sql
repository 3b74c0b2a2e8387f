-- Named persistent volumes of a team. A volume lives on one host (its files are there), so a
-- sandbox that mounts it is placed on that host.
CREATE TABLE volumes (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams(id) ON DELETE CASCADE,
  name text NOT NULL,
  host_id text NOT NULL REFERENCES hosts(id),
  size_mib integer NOT NULL CHECK (size_mib > 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (team_id, name)
);
