import { WrennError } from "@wrenn/shared";
import { SYSTEM_ACTOR } from "./auth/principal.js";
import type { ServerContext } from "./extensions.js";
import type { CreatedTeam } from "./services/teams-service.js";

export interface Bootstrapped extends CreatedTeam {
  /** The admin team's first user and its password (shown once; only its hash is stored). */
  adminUser: { email: string; password: string } | null;
}

/**
 * Creates the admin team, its first API key and its first user (admin@localhost, owner),
 * once. Refuses when an admin team exists (its keys make further teams), so running it
 * twice never mints a second admin key.
 */
export async function bootstrapAdminTeam(ctx: ServerContext, teamName = "admin"): Promise<Bootstrapped> {
  const existing = await ctx.services.teams.adminTeam();
  if (existing) {
    throw new WrennError("already_exists", `already bootstrapped: admin team ${existing.id} exists`);
  }
  const created = await ctx.services.teams.createTeam(
    { name: teamName, isAdmin: true, keyName: "bootstrap" },
    SYSTEM_ACTOR,
  );
  const adminUser = await ctx.services.accounts.ensureAdminUser(created.team);
  return { ...created, adminUser };
}
