import { randomBytes } from "node:crypto";
import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { MemberRole, SessionRow } from "../db/schema.js";
import type { Principal } from "./principal.js";
import { constantTimeEqual, hashPresentedSecret, issueSecret } from "./secrets.js";

/** last_seen_at / expires_at are moved at most this often per session. */
const TOUCH_GRANULARITY_MS = 60_000;

export interface SessionAuth {
  session: SessionRow;
  role: MemberRole;
  principal: Principal;
}

export interface NewSession {
  /** The cookie's value (shown to the browser only). */
  token: string;
  session: SessionRow;
}

/** Browser sessions: made at sign-in, found by the sha256 of the cookie's token, sliding expiry. */
export class SessionStore {
  constructor(
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly now: () => Date,
  ) {}

  get ttlSec(): number {
    return Math.floor(this.ttlMs / 1000);
  }

  async create(userId: string, teamId: string): Promise<NewSession> {
    const secret = issueSecret("session");
    const now = this.now();
    const session = await this.db
      .insertInto("sessions")
      .values({
        id: secret.hash,
        user_id: userId,
        team_id: teamId,
        csrf_token: randomBytes(24).toString("base64url"),
        created_at: now,
        last_seen_at: now,
        expires_at: new Date(now.getTime() + this.ttlMs),
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return { token: secret.value, session };
  }

  /**
   * The session a cookie names, with the caller's role in its team, as a Principal acting
   * for that team. Unknown, expired or membership-less sessions are unauthenticated.
   */
  async authenticate(token: string): Promise<SessionAuth> {
    const id = hashPresentedSecret("session", token);
    if (!id) throw new WrennError("unauthenticated", "malformed session cookie");
    const row = await this.db
      .selectFrom("sessions")
      .innerJoin("teams", "teams.id", "sessions.team_id")
      .innerJoin("team_members", (join) =>
        join
          .onRef("team_members.team_id", "=", "sessions.team_id")
          .onRef("team_members.user_id", "=", "sessions.user_id"),
      )
      .selectAll("sessions")
      .select(["teams.is_admin", "team_members.role"])
      .where("sessions.id", "=", id)
      .executeTakeFirst();
    const now = this.now();
    if (!row || row.expires_at.getTime() <= now.getTime()) {
      throw new WrennError("unauthenticated", "session expired or signed out; sign in again");
    }
    const { is_admin, role, ...session } = row;
    if (now.getTime() - session.last_seen_at.getTime() > TOUCH_GRANULARITY_MS) {
      session.last_seen_at = now;
      session.expires_at = new Date(now.getTime() + this.ttlMs);
      await this.db
        .updateTable("sessions")
        .set({ last_seen_at: session.last_seen_at, expires_at: session.expires_at })
        .where("id", "=", id)
        .execute();
    }
    const manager = role === "owner" || role === "admin";
    return {
      session,
      role,
      principal: {
        teamId: session.team_id,
        isAdmin: is_admin && manager,
        role,
        actor: { type: "user", id: session.user_id },
      },
    };
  }

  /** Throws permission_denied unless the presented CSRF token is the session's. */
  checkCsrf(session: SessionRow, presented: string | string[] | undefined): void {
    if (typeof presented !== "string" || !constantTimeEqual(presented, session.csrf_token)) {
      throw new WrennError("permission_denied", "missing or wrong x-csrf-token header");
    }
  }

  async setTeam(sessionId: string, teamId: string): Promise<void> {
    await this.db.updateTable("sessions").set({ team_id: teamId }).where("id", "=", sessionId).execute();
  }

  async delete(sessionId: string): Promise<void> {
    await this.db.deleteFrom("sessions").where("id", "=", sessionId).execute();
  }

  /** Signs a user out everywhere (password reset). */
  async deleteForUser(userId: string): Promise<void> {
    await this.db.deleteFrom("sessions").where("user_id", "=", userId).execute();
  }

  /** Drops expired rows (a worker). */
  async sweep(): Promise<void> {
    await this.db.deleteFrom("sessions").where("expires_at", "<=", this.now()).execute();
  }
}
