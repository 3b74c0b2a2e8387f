import type { ColumnType, Generated } from "kysely";
import type { CreatedAt } from "./schema-columns.js";

/** Teams, users, sessions, invitations, members and API keys (migrations 001, 011). */

export interface TeamsTable {
  id: string;
  name: string;
  is_admin: Generated<boolean>;
  created_at: CreatedAt;
}

export interface UsersTable {
  id: string;
  email: string;
  name: Generated<string>;
  /** argon2id PHC string (migration 011); null: cannot sign in with a password. */
  password_hash: Generated<string | null>;
  created_at: CreatedAt;
}

/** A browser session (migration 011); id is the sha256 of the cookie's token. */
export interface SessionsTable {
  id: string;
  user_id: string;
  /** The team the session acts for. */
  team_id: string;
  csrf_token: string;
  created_at: CreatedAt;
  last_seen_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
}

/** An invitation into a team (migration 011); only the accept token's sha256 is kept. */
export interface InvitationsTable {
  id: string;
  team_id: string;
  email: string;
  role: MemberRole;
  token_hash: string;
  invited_by: string | null;
  created_at: CreatedAt;
  expires_at: Date;
  accepted_at: Generated<Date | null>;
}

export type MemberRole = "owner" | "admin" | "member";

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  role: MemberRole;
  created_at: CreatedAt;
}

export interface ApiKeysTable {
  id: string;
  team_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_by: string | null;
  created_at: CreatedAt;
  last_used_at: Date | null;
  revoked_at: Date | null;
}
