-- Agents that enrol themselves: the certificate pinned at enrolment, a short-lived access
-- credential with a rotating refresh token, the agent's own heartbeat, tags and draining.
ALTER TABLE hosts ADD COLUMN cert_pem text;
ALTER TABLE hosts ADD COLUMN cert_fingerprint text;
ALTER TABLE hosts ADD COLUMN credential_expires_at timestamptz;
-- Set when the current access credential is first presented: a refresh token replayed after
-- that is reuse, not an agent that crashed before keeping its new pair.
ALTER TABLE hosts ADD COLUMN credential_used_at timestamptz;
ALTER TABLE hosts ADD COLUMN agent_seen_at timestamptz;
-- The fingerprint of the certificate the agent says it serves (its heartbeat): differing from
-- cert_fingerprint explains an unreachable host whose agent is alive.
ALTER TABLE hosts ADD COLUMN agent_cert_fingerprint text;
ALTER TABLE hosts ADD COLUMN tags jsonb NOT NULL DEFAULT '{}';
ALTER TABLE hosts ADD COLUMN draining boolean NOT NULL DEFAULT false;

-- Every refresh token a host was given (sha256 only). The unused one is current; parent_hash
-- links each to the token whose use issued it, so a replayed token is recognised as reuse.
CREATE TABLE host_refresh_tokens (
  token_hash text PRIMARY KEY,
  host_id text NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
  parent_hash text,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at timestamptz
);
CREATE INDEX host_refresh_tokens_host ON host_refresh_tokens (host_id);
CREATE INDEX host_refresh_tokens_parent ON host_refresh_tokens (parent_hash);

-- revoked: a host whose refresh token was reused; its credentials are cleared until it enrols again.
ALTER TABLE hosts DROP CONSTRAINT hosts_state_check;
ALTER TABLE hosts ADD CONSTRAINT hosts_state_check CHECK (state IN ('pending', 'up', 'unreachable', 'revoked'));
