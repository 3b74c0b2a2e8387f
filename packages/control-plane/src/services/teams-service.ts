import { WrennError } from "@wrenn/shared";
import type { Actor, Principal } from "../auth/principal.js";
import { issueSecret } from "../auth/secrets.js";
import type { MemberRole, TeamRow } from "../db/schema.js";
import { newApiKeyId, newTeamId, newUserId } from "../ids.js";
import { memberRows } from "./member-rows.js";
import type { ServiceDeps } from "./service-deps.js";

export interface CreatedTeam {
  team: TeamRow;
  apiKey: { id: string; value: string; prefix: string };
}

export interface MemberView {
  user_id: string;
  email: string;
  name: string;
  role: MemberRole;
  created_at: Date;
}

/** Teams and their members. A caller sees only its own team; the admin team may create teams. */
export class TeamsService {
  constructor(private readonly deps: ServiceDeps) {}

  /** Creates a team with its first API key (bootstrap and the admin team's POST /v1/teams). */
  async createTeam(
    input: { name: string; isAdmin: boolean; keyName?: string },
    actor: Actor,
  ): Promise<CreatedTeam> {
    const { db, audit } = this.deps;
    return audit.track(
      { teamId: null, actor, action: "team.create", resourceType: "team", details: { name: input.name } },
      () =>
        db.transaction().execute(async (tx) => {
          const team = await tx
            .insertInto("teams")
            .values({ id: newTeamId(), name: input.name, is_admin: input.isAdmin })
            .returningAll()
            .executeTakeFirstOrThrow();
          const secret = issueSecret("api_key");
          const keyId = newApiKeyId();
          await tx
            .insertInto("api_keys")
            .values({
              id: keyId,
              team_id: team.id,
              name: input.keyName ?? "default",
              prefix: secret.prefix,
              key_hash: secret.hash,
              created_by: actor.id,
              last_used_at: null,
              revoked_at: null,
            })
            .execute();
          return { team, apiKey: { id: keyId, value: secret.value, prefix: secret.prefix } };
        }),
      (created) => created.team.id,
    );
  }

  async create(principal: Principal, name: string): Promise<CreatedTeam> {
    if (!principal.isAdmin) throw new WrennError("permission_denied", "only the admin team may create teams");
    return this.createTeam({ name, isAdmin: false }, principal.actor);
  }

  /** The admin team, if one was made (bootstrap makes it once). */
  async adminTeam(): Promise<Pick<TeamRow, "id"> | undefined> {
    return this.deps.db.selectFrom("teams").select("id").where("is_admin", "=", true).executeTakeFirst();
  }

  /** The caller's team; any other id is not found (existence is not disclosed). */
  async get(principal: Principal, teamId: string): Promise<TeamRow> {
    if (teamId !== principal.teamId) throw new WrennError("not_found", `team ${teamId} not found`);
    const team = await this.deps.db
      .selectFrom("teams")
      .selectAll()
      .where("id", "=", teamId)
      .executeTakeFirst();
    if (!team) throw new WrennError("not_found", `team ${teamId} not found`);
    return team;
  }

  async list(principal: Principal): Promise<TeamRow[]> {
    return [await this.get(principal, principal.teamId)];
  }

  async rename(principal: Principal, teamId: string, name: string): Promise<TeamRow> {
    await this.get(principal, teamId);
    return this.deps.audit.track(
      { teamId, actor: principal.actor, action: "team.update", resourceType: "team", resourceId: teamId },
      () =>
        this.deps.db
          .updateTable("teams")
          .set({ name })
          .where("id", "=", teamId)
          .returningAll()
          .executeTakeFirstOrThrow(),
    );
  }

  async listMembers(principal: Principal, teamId: string): Promise<MemberView[]> {
    await this.get(principal, teamId);
    return memberRows(this.deps.db, teamId).orderBy("team_members.created_at").execute();
  }

  async addMember(
    principal: Principal,
    teamId: string,
    input: { email: string; name?: string | undefined; role: MemberRole },
  ): Promise<MemberView> {
    await this.get(principal, teamId);
    const { db, audit } = this.deps;
    return audit.track(
      {
        teamId,
        actor: principal.actor,
        action: "team.member.add",
        resourceType: "user",
        details: { email: input.email, role: input.role },
      },
      () =>
        db.transaction().execute(async (tx) => {
          const email = input.email.toLowerCase();
          let user = await tx.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
          if (!user) {
            user = await tx
              .insertInto("users")
              .values({ id: newUserId(), email, name: input.name ?? "" })
              .returningAll()
              .executeTakeFirstOrThrow();
          }
          const existing = await tx
            .selectFrom("team_members")
            .select("user_id")
            .where("team_id", "=", teamId)
            .where("user_id", "=", user.id)
            .executeTakeFirst();
          if (existing) throw new WrennError("already_exists", `${email} is already a member`);
          const member = await tx
            .insertInto("team_members")
            .values({ team_id: teamId, user_id: user.id, role: input.role })
            .returningAll()
            .executeTakeFirstOrThrow();
          return {
            user_id: user.id,
            email: user.email,
            name: user.name,
            role: member.role,
            created_at: member.created_at,
          };
        }),
      (m) => m.user_id,
    );
  }

  async removeMember(principal: Principal, teamId: string, userId: string): Promise<void> {
    await this.get(principal, teamId);
    await this.deps.audit.track(
      {
        teamId,
        actor: principal.actor,
        action: "team.member.remove",
        resourceType: "user",
        resourceId: userId,
      },
      async () => {
        const res = await this.deps.db
          .deleteFrom("team_members")
          .where("team_id", "=", teamId)
          .where("user_id", "=", userId)
          .executeTakeFirst();
        if ((res.numDeletedRows ?? 0n) === 0n)
          throw new WrennError("not_found", `member ${userId} not found`);
      },
    );
  }
}
