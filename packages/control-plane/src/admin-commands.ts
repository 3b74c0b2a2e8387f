import { WrennError } from "@wrenn/shared";
import { SYSTEM_ACTOR } from "./auth/principal.js";
import type { ServerContext } from "./extensions.js";

/**
 * Host commands over the control plane's own database (no API key: whoever can open the
 * database owns the installation). Each returns the lines to print.
 */

/** Gives an already bootstrapped admin team its first user when it has none (installs made before accounts). */
export async function ensureAdminUserCommand(ctx: ServerContext): Promise<string> {
  const team = await ctx.services.teams.adminTeam();
  if (!team) throw new WrennError("failed_precondition", "not bootstrapped: run `wrenn-cp bootstrap` first");
  const made = await ctx.services.accounts.ensureAdminUser(team);
  return made ? `admin user ${made.email}\nadmin password ${made.password}\n` : "";
}

/**
 * Sets a new random password for a user (default the bootstrap admin) and signs it out
 * everywhere; with newApiKey also mints an API key for the admin team.
 */
export async function resetPasswordCommand(
  ctx: ServerContext,
  options: { email?: string | undefined; newApiKey: boolean },
): Promise<string> {
  const email = options.email ?? "admin@localhost";
  const team = await ctx.services.teams.adminTeam();
  let out = "";
  if (!options.email && team) {
    // The bootstrap admin may predate accounts: make it rather than fail.
    const made = await ctx.services.accounts.ensureAdminUser(team);
    if (made) out += `user ${made.email}\npassword ${made.password}\n`;
  }
  if (!out) {
    const reset = await ctx.services.accounts.resetPassword(email);
    out += `user ${reset.user.email}\npassword ${reset.password}\n`;
  }
  if (options.newApiKey) {
    if (!team) throw new WrennError("failed_precondition", "not bootstrapped: there is no admin team");
    const key = await ctx.services.apiKeys.create(
      { teamId: team.id, isAdmin: true, actor: SYSTEM_ACTOR },
      `reset-${ctx.now().toISOString().slice(0, 10)}`,
    );
    out += `team ${team.id}\napi key ${key.value}\n`;
  }
  return out;
}
