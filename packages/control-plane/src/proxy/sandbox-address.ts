import type { Db } from "../db/database.js";

/** Where a sandbox's ports are reachable, or why they are not. */
export type SandboxAddress = { reachable: true; hostIp: string } | { reachable: false; reason: string };

/**
 * Looks a sandbox up for its traffic. Not team-scoped: whoever reaches a sandbox port
 * still has to satisfy what listens there (envd checks its access token).
 */
export async function resolveSandboxAddress(db: Db, sandboxId: string): Promise<SandboxAddress> {
  const row = await db
    .selectFrom("sandboxes")
    .select(["state", "host_ip"])
    .where("id", "=", sandboxId)
    .executeTakeFirst();
  if (!row) return { reachable: false, reason: "not found" };
  if (row.state !== "running") return { reachable: false, reason: row.state };
  if (!row.host_ip) return { reachable: false, reason: "no address" };
  return { reachable: true, hostIp: row.host_ip };
}
