import { WrennError } from "@wrenn/shared";
import { SYSTEM_ACTOR } from "./auth/principal.js";
import type { ServerContext } from "./extensions.js";
import type { CreatedTeam } from "./services/teams-service.js";

/**
 * Creates the admin team and its first API key, once. Refuses when an admin team exists
 * (its keys make further teams), so running it twice never mints a second admin key.
 */
export async function bootstrapAdminTeam(ctx: ServerContext, teamName = "admin"): Promise<CreatedTeam> {
  const existing = await ctx.services.teams.adminTeam();
  if (existing) {
    throw new WrennError("already_exists", `already bootstrapped: admin team ${existing.id} exists`);
  }
  return ctx.services.teams.createTeam({ name: teamName, isAdmin: true, keyName: "bootstrap" }, SYSTEM_ACTOR);
}
