-- Control-plane replicas on one PostgreSQL. Each replica heartbeats its row; a replica whose
-- row is gone or stale is dead, and what it owned (leases, builds) is taken over.
CREATE TABLE replicas (
  id text PRIMARY KEY,
  started_at timestamptz NOT NULL DEFAULT now(),
  last_seen_at timestamptz NOT NULL DEFAULT now()
);

-- One row per leader-only background worker. The holder renews expires_at (database clock);
-- another replica takes the row once it has expired. fence grows at each change of holder.
CREATE TABLE worker_leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL,
  fence bigint NOT NULL DEFAULT 1
);

-- The replica running a build; a build whose replica is dead is failed by the recovery worker.
ALTER TABLE template_builds ADD COLUMN claimed_by text;

-- Events too large for one NOTIFY payload: the notification carries the id of this row.
CREATE TABLE event_spill (
  id text PRIMARY KEY,
  body jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Failed sign-ins per key (email or address), shared by every replica.
CREATE TABLE signin_failures (
  key text PRIMARY KEY,
  count integer NOT NULL,
  reset_at timestamptz NOT NULL
);

-- Webhook deliveries as an outbox: the body to send, and until when the replica sending it
-- (or waiting to retry it) has it. A pending row past claimed_until is taken by another replica.
ALTER TABLE channel_deliveries ADD COLUMN body text;
ALTER TABLE channel_deliveries ADD COLUMN claimed_until timestamptz;
CREATE INDEX channel_deliveries_unclaimed ON channel_deliveries (claimed_until) WHERE status = 'pending';

-- E2B upload links (the SDK PUTs a copy step's archive to one without an API key): any
-- replica may get the PUT. Only the token's sha256 is kept.
CREATE TABLE upload_links (
  token_hash text PRIMARY KEY,
  principal jsonb NOT NULL,
  files_hash text NOT NULL,
  expires_at timestamptz NOT NULL
);
