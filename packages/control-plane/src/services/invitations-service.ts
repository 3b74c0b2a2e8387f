import { WrennError } from "@wrenn/shared";
import { hashPassword } from "../auth/passwords.js";
import { type Principal, requireManager } from "../auth/principal.js";
import { hashPresentedSecret, issueSecret } from "../auth/secrets.js";
import type { InvitationRow, MemberRole, UserRow } from "../db/schema.js";
import { newInvitationId, newUserId } from "../ids.js";
import { normalizeEmail } from "./accounts-service.js";
import type { ServiceDeps } from "./service-deps.js";

export interface AcceptInput {
  token: string;
  /** The signed-in user accepting, if any. */
  userId?: string | undefined;
  /** Without a session: the new account's password. */
  password?: string | undefined;
  name?: string | undefined;
}

/** Invitations into the caller's team: a one-time token, accepted by the invited email only. */
export class InvitationsService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(
    principal: Principal,
    input: { email: string; role: MemberRole },
  ): Promise<{ row: InvitationRow; token: string }> {
    requireManager(principal, "invite members");
    if (input.role === "owner" && principal.role === "admin") {
      throw new WrennError("permission_denied", "only an owner may invite an owner");
    }
    const email = normalizeEmail(input.email);
    const secret = issueSecret("invitation");
    const now = this.deps.now();
    return this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "invitation.create",
        resourceType: "invitation",
        details: { email, role: input.role },
      },
      async () => {
        const member = await this.deps.db
          .selectFrom("team_members")
          .innerJoin("users", "users.id", "team_members.user_id")
          .select("users.id")
          .where("team_members.team_id", "=", principal.teamId)
          .where("users.email", "=", email)
          .executeTakeFirst();
        if (member) throw new WrennError("already_exists", `${email} is already a member`);
        const row = await this.deps.db
          .insertInto("invitations")
          .values({
            id: newInvitationId(),
            team_id: principal.teamId,
            email,
            role: input.role,
            token_hash: secret.hash,
            invited_by: principal.actor.id,
            created_at: now,
            expires_at: new Date(now.getTime() + this.deps.config.invitationTtlSec * 1000),
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return { row, token: secret.value };
      },
      (made) => made.row.id,
    );
  }

  /** The team's invitations not yet accepted (expired ones included, marked by expires_at). */
  async list(principal: Principal): Promise<InvitationRow[]> {
    requireManager(principal, "see invitations");
    return this.deps.db
      .selectFrom("invitations")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .where("accepted_at", "is", null)
      .orderBy("created_at", "desc")
      .execute();
  }

  async revoke(principal: Principal, id: string): Promise<void> {
    requireManager(principal, "revoke invitations");
    await this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "invitation.revoke",
        resourceType: "invitation",
        resourceId: id,
      },
      async () => {
        const res = await this.deps.db
          .deleteFrom("invitations")
          .where("id", "=", id)
          .where("team_id", "=", principal.teamId)
          .where("accepted_at", "is", null)
          .executeTakeFirst();
        if ((res.numDeletedRows ?? 0n) === 0n)
          throw new WrennError("not_found", `invitation ${id} not found`);
      },
    );
  }

  /**
   * Accepts an invitation: the signed-in user whose email it names joins the team; without a
   * session, a new account for that email is made with the given password. Returns the user
   * and the team joined.
   */
  async accept(input: AcceptInput): Promise<{ user: UserRow; teamId: string; created: boolean }> {
    const hash = hashPresentedSecret("invitation", input.token);
    if (!hash) throw new WrennError("not_found", "invitation not found or already used");
    const passwordHash = input.userId || !input.password ? null : await hashPassword(input.password);
    const { db, audit } = this.deps;
    const invitation = await db
      .selectFrom("invitations")
      .selectAll()
      .where("token_hash", "=", hash)
      .executeTakeFirst();
    const entry = {
      teamId: invitation?.team_id ?? null,
      actor: { type: "user" as const, id: input.userId ?? null },
      action: "invitation.accept",
      resourceType: "invitation",
      resourceId: invitation?.id ?? null,
    };
    return audit.track(entry, () =>
      db.transaction().execute(async (tx) => {
        const inv = await tx
          .selectFrom("invitations")
          .selectAll()
          .where("token_hash", "=", hash)
          .where("accepted_at", "is", null)
          .forUpdate()
          .executeTakeFirst();
        if (!inv || inv.expires_at.getTime() <= this.deps.now().getTime()) {
          throw new WrennError("not_found", "invitation not found, expired or already used");
        }
        let user: UserRow | undefined;
        let created = false;
        if (input.userId) {
          user = await tx.selectFrom("users").selectAll().where("id", "=", input.userId).executeTakeFirst();
          if (!user || user.email !== inv.email) {
            throw new WrennError(
              "permission_denied",
              "this invitation is for another email; sign in as that user",
            );
          }
        } else {
          const existing = await tx
            .selectFrom("users")
            .select("id")
            .where("email", "=", inv.email)
            .executeTakeFirst();
          if (existing)
            throw new WrennError("unauthenticated", `sign in as ${inv.email} to accept this invitation`);
          if (!passwordHash)
            throw new WrennError("invalid_argument", "password: required to create the account");
          user = await tx
            .insertInto("users")
            .values({
              id: newUserId(),
              email: inv.email,
              name: input.name ?? "",
              password_hash: passwordHash,
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          created = true;
        }
        const already = await tx
          .selectFrom("team_members")
          .select("user_id")
          .where("team_id", "=", inv.team_id)
          .where("user_id", "=", user.id)
          .executeTakeFirst();
        if (!already) {
          await tx
            .insertInto("team_members")
            .values({ team_id: inv.team_id, user_id: user.id, role: inv.role })
            .execute();
        }
        await tx
          .updateTable("invitations")
          .set({ accepted_at: this.deps.now() })
          .where("id", "=", inv.id)
          .execute();
        return { user, teamId: inv.team_id, created };
      }),
    );
  }
}
