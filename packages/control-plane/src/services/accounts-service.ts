import { WrennError } from "@wrenn/shared";
import { decoyPasswordHash, generatePassword, hashPassword, verifyPassword } from "../auth/passwords.js";
import type { NewSession, SessionStore } from "../auth/sessions.js";
import type { SigninThrottle } from "../auth/signin-throttle.js";
import type { MemberRole, TeamRow, UserRow } from "../db/schema.js";
import { newTeamId, newUserId } from "../ids.js";
import type { ServiceDeps } from "./service-deps.js";

export interface SessionTeam {
  id: string;
  name: string;
  is_admin: boolean;
  role: MemberRole;
}

export interface SignedIn extends NewSession {
  user: UserRow;
}

export const normalizeEmail = (email: string): string => email.trim().toLowerCase();

const SIGNIN_FAILED = "wrong email or password";

/** Accounts: sign-up, sign-in, the teams a user belongs to, passwords set from the host. */
export class AccountsService {
  constructor(
    private readonly deps: ServiceDeps,
    readonly sessions: SessionStore,
    readonly throttle: SigninThrottle,
  ) {}

  /** A new user with a team of their own (as its owner), signed in. */
  async signup(input: { email: string; password: string; name?: string | undefined }): Promise<SignedIn> {
    const email = normalizeEmail(input.email);
    const passwordHash = await hashPassword(input.password);
    const { db, audit } = this.deps;
    const user = await audit.track(
      {
        teamId: null,
        actor: { type: "user", id: null },
        action: "auth.signup",
        resourceType: "user",
        details: { email },
      },
      () =>
        db.transaction().execute(async (tx) => {
          const existing = await tx
            .selectFrom("users")
            .select("id")
            .where("email", "=", email)
            .executeTakeFirst();
          if (existing)
            throw new WrennError("already_exists", `an account for ${email} exists; sign in instead`);
          const user = await tx
            .insertInto("users")
            .values({ id: newUserId(), email, name: input.name ?? "", password_hash: passwordHash })
            .returningAll()
            .executeTakeFirstOrThrow();
          const team = await tx
            .insertInto("teams")
            .values({ id: newTeamId(), name: input.name ? `${input.name}'s team` : email })
            .returningAll()
            .executeTakeFirstOrThrow();
          await tx
            .insertInto("team_members")
            .values({ team_id: team.id, user_id: user.id, role: "owner" })
            .execute();
          return { user, team };
        }),
      (made) => made.user.id,
    );
    const session = await this.sessions.create(user.user.id, user.team.id);
    return { ...session, user: user.user };
  }

  /**
   * Signs in with email and password. An unknown email and a wrong password fail alike (and
   * take as long: a decoy hash is checked); failures count towards the throttle.
   */
  async signin(input: { email: string; password: string }, ip: string): Promise<SignedIn> {
    const email = normalizeEmail(input.email);
    const { db, audit } = this.deps;
    try {
      await this.throttle.check(email, ip);
    } catch (err) {
      const entry = { teamId: null, actor: { type: "user" as const, id: null }, action: "auth.signin" };
      await audit.record(
        { ...entry, resourceType: "user", details: { email, ip } },
        "failure",
        "resource_exhausted",
      );
      throw err;
    }
    const user = await db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
    const ok = await verifyPassword(user?.password_hash ?? (await decoyPasswordHash()), input.password);
    const team = ok && user ? await this.defaultTeam(user.id) : undefined;
    const entry = {
      teamId: team?.id ?? null,
      actor: { type: "user" as const, id: user?.id ?? null },
      action: "auth.signin",
      resourceType: "user",
      resourceId: user?.id ?? null,
      details: { email, ip },
    };
    if (!ok || !user) {
      await this.throttle.recordFailure(email, ip);
      await audit.record(entry, "failure", "unauthenticated");
      throw new WrennError("unauthenticated", SIGNIN_FAILED);
    }
    if (!team) {
      await audit.record(entry, "failure", "failed_precondition");
      throw new WrennError("failed_precondition", "this account belongs to no team; ask for an invitation");
    }
    await this.throttle.recordSuccess(email);
    const session = await this.sessions.create(user.id, team.id);
    await audit.record(entry, "success");
    return { ...session, user };
  }

  async signout(sessionId: string, userId: string, teamId: string): Promise<void> {
    await this.deps.audit.track(
      {
        teamId,
        actor: { type: "user", id: userId },
        action: "auth.signout",
        resourceType: "user",
        resourceId: userId,
      },
      () => this.sessions.delete(sessionId),
    );
  }

  async user(userId: string): Promise<UserRow> {
    const user = await this.deps.db
      .selectFrom("users")
      .selectAll()
      .where("id", "=", userId)
      .executeTakeFirst();
    if (!user) throw new WrennError("unauthenticated", "the session's user no longer exists");
    return user;
  }

  /** The user's teams, the oldest membership first. */
  async teams(userId: string): Promise<SessionTeam[]> {
    return this.deps.db
      .selectFrom("team_members")
      .innerJoin("teams", "teams.id", "team_members.team_id")
      .select(["teams.id", "teams.name", "teams.is_admin", "team_members.role"])
      .where("team_members.user_id", "=", userId)
      .orderBy("team_members.created_at")
      .orderBy("teams.id")
      .execute();
  }

  private async defaultTeam(userId: string): Promise<SessionTeam | undefined> {
    return (await this.teams(userId))[0];
  }

  /** Points the session at another of the user's teams. */
  async switchTeam(sessionId: string, userId: string, teamId: string): Promise<void> {
    const teams = await this.teams(userId);
    // Teams the user is not in are "not found": their existence is not disclosed.
    if (!teams.some((t) => t.id === teamId)) throw new WrennError("not_found", `team ${teamId} not found`);
    await this.sessions.setTeam(sessionId, teamId);
  }

  /**
   * The admin team's first user (bootstrap): admin@localhost, owner, with a random
   * password returned once. Does nothing when that user exists.
   */
  async ensureAdminUser(adminTeam: Pick<TeamRow, "id">): Promise<{ email: string; password: string } | null> {
    const email = "admin@localhost";
    const { db, audit } = this.deps;
    const exists = await db.selectFrom("users").select("id").where("email", "=", email).executeTakeFirst();
    if (exists) return null;
    const password = generatePassword();
    const passwordHash = await hashPassword(password);
    await audit.track(
      {
        teamId: adminTeam.id,
        actor: { type: "system", id: null },
        action: "user.create",
        resourceType: "user",
        details: { email },
      },
      () =>
        db.transaction().execute(async (tx) => {
          const user = await tx
            .insertInto("users")
            .values({ id: newUserId(), email, name: "admin", password_hash: passwordHash })
            .returningAll()
            .executeTakeFirstOrThrow();
          await tx
            .insertInto("team_members")
            .values({ team_id: adminTeam.id, user_id: user.id, role: "owner" })
            .execute();
          return user;
        }),
      (user) => user.id,
    );
    return { email, password };
  }

  /** Sets a new random password (host command) and signs the user out everywhere. */
  async resetPassword(email: string): Promise<{ user: UserRow; password: string }> {
    const normalized = normalizeEmail(email);
    const user = await this.deps.db
      .selectFrom("users")
      .selectAll()
      .where("email", "=", normalized)
      .executeTakeFirst();
    if (!user) throw new WrennError("not_found", `no user ${normalized}`);
    const password = generatePassword();
    const passwordHash = await hashPassword(password);
    await this.deps.audit.track(
      {
        teamId: null,
        actor: { type: "system", id: null },
        action: "user.password_reset",
        resourceType: "user",
        resourceId: user.id,
      },
      async () => {
        await this.deps.db
          .updateTable("users")
          .set({ password_hash: passwordHash })
          .where("id", "=", user.id)
          .execute();
        await this.sessions.deleteForUser(user.id);
      },
    );
    return { user, password };
  }
}
