import type { ServiceDeps } from "./service-deps.js";

/** A team's members joined with their users, as MemberView rows; callers add filters and order. */
export const memberRows = (db: ServiceDeps["db"], teamId: string) =>
  db
    .selectFrom("team_members")
    .innerJoin("users", "users.id", "team_members.user_id")
    .select([
      "users.id as user_id",
      "users.email",
      "users.name",
      "team_members.role",
      "team_members.created_at",
    ])
    .where("team_members.team_id", "=", teamId);
