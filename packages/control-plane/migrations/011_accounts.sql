-- Sign-in: an argon2id hash (PHC string); null for users who cannot sign in with a password
-- (made by POST /v1/teams/{id}/members before accounts existed, or not yet accepted).
ALTER TABLE users ADD COLUMN password_hash text;

-- Browser sessions. The id is the sha256 of the cookie's token, so the table alone signs no
-- one in. team_id is the team the session acts for (switchable among the user's teams).
-- Expiry slides: each use moves expires_at forward.
CREATE TABLE sessions (
  id text PRIMARY KEY,
  user_id text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  csrf_token text NOT NULL,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  last_seen_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Invitations into a team: the accept token is handed out once; only its sha256 is kept.
CREATE TABLE invitations (
  id text PRIMARY KEY,
  team_id text NOT NULL REFERENCES teams (id) ON DELETE CASCADE,
  email text NOT NULL,
  role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
  token_hash text NOT NULL UNIQUE,
  invited_by text,
  created_at timestamptz(3) NOT NULL DEFAULT now(),
  expires_at timestamptz(3) NOT NULL,
  accepted_at timestamptz(3)
);
CREATE INDEX invitations_team ON invitations (team_id);
