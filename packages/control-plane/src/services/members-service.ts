import { WrennError } from "@wrenn/shared";
import { type Principal, requireManager } from "../auth/principal.js";
import type { MemberRole } from "../db/schema.js";
import { memberRows } from "./member-rows.js";
import type { ServiceDeps } from "./service-deps.js";
import type { MemberView } from "./teams-service.js";

/** Whether the caller may touch owners (grant, demote, remove one): owners and API keys. */
const actsAsOwner = (principal: Principal): boolean =>
  principal.role === undefined || principal.role === "owner";

/** The members of the caller's team and their roles. A team always keeps an owner. */
export class MembersService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(principal: Principal): Promise<MemberView[]> {
    return memberRows(this.deps.db, principal.teamId).orderBy("team_members.created_at").execute();
  }

  async setRole(principal: Principal, userId: string, role: MemberRole): Promise<MemberView> {
    requireManager(principal, "change roles");
    const teamId = principal.teamId;
    return this.deps.audit.track(
      {
        teamId,
        actor: principal.actor,
        action: "team.member.role",
        resourceType: "user",
        resourceId: userId,
        details: { role },
      },
      () =>
        this.deps.db.transaction().execute(async (tx) => {
          const current = await this.memberFor(tx, teamId, userId);
          if ((current.role === "owner" || role === "owner") && !actsAsOwner(principal)) {
            throw new WrennError("permission_denied", "only an owner may grant or change the owner role");
          }
          if (current.role === "owner" && role !== "owner")
            await this.keepAnOwner(tx, teamId, userId, "demote");
          await tx
            .updateTable("team_members")
            .set({ role })
            .where("team_id", "=", teamId)
            .where("user_id", "=", userId)
            .execute();
          return { ...current, role };
        }),
    );
  }

  async remove(principal: Principal, userId: string): Promise<void> {
    // Anyone may leave a team; removing someone else takes an owner or admin.
    const self = principal.actor.type === "user" && principal.actor.id === userId;
    if (!self) requireManager(principal, "remove members");
    const teamId = principal.teamId;
    await this.deps.audit.track(
      {
        teamId,
        actor: principal.actor,
        action: "team.member.remove",
        resourceType: "user",
        resourceId: userId,
      },
      () =>
        this.deps.db.transaction().execute(async (tx) => {
          const current = await this.memberFor(tx, teamId, userId);
          if (current.role === "owner") {
            if (!self && !actsAsOwner(principal)) {
              throw new WrennError("permission_denied", "only an owner may remove an owner");
            }
            await this.keepAnOwner(tx, teamId, userId, "remove");
          }
          await tx
            .deleteFrom("team_members")
            .where("team_id", "=", teamId)
            .where("user_id", "=", userId)
            .execute();
          await tx
            .deleteFrom("sessions")
            .where("team_id", "=", teamId)
            .where("user_id", "=", userId)
            .execute();
        }),
    );
  }

  private async memberFor(tx: ServiceDeps["db"], teamId: string, userId: string): Promise<MemberView> {
    const member = await memberRows(tx, teamId)
      .where("team_members.user_id", "=", userId)
      .forUpdate()
      .executeTakeFirst();
    if (!member) throw new WrennError("not_found", `member ${userId} not found`);
    return member;
  }

  /** Refuses to leave the team without an owner (row locks keep two demotions from racing). */
  private async keepAnOwner(
    tx: ServiceDeps["db"],
    teamId: string,
    userId: string,
    what: string,
  ): Promise<void> {
    const others = await tx
      .selectFrom("team_members")
      .select("user_id")
      .where("team_id", "=", teamId)
      .where("role", "=", "owner")
      .where("user_id", "!=", userId)
      .forUpdate()
      .execute();
    if (others.length === 0) {
      throw new WrennError(
        "failed_precondition",
        `cannot ${what} the team's last owner; make another member owner first`,
      );
    }
  }
}
