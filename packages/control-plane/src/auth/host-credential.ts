import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import { hashPresentedSecret } from "./secrets.js";

/**
 * Authenticates a host agent by its credential (`Authorization: Bearer wrnh_…`): an enrolled
 * agent's expires (it refreshes), an operator-registered host's does not. The first use of
 * a credential is recorded: after it, replaying the refresh token that issued it is reuse.
 */
export async function authenticateHost(
  db: Db,
  authorization: string | undefined,
  now: Date,
): Promise<string> {
  const presented = authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length).trim() : "";
  const hash = presented ? hashPresentedSecret("host_credential", presented) : null;
  if (!hash) throw new WrennError("unauthenticated", "a host credential is required");
  const host = await db
    .selectFrom("hosts")
    .select(["id", "credential_expires_at", "credential_used_at"])
    .where("credential_hash", "=", hash)
    .executeTakeFirst();
  if (!host) throw new WrennError("unauthenticated", "invalid host credential");
  if (host.credential_expires_at && host.credential_expires_at.getTime() <= now.getTime()) {
    throw new WrennError("unauthenticated", "host credential expired; refresh it at POST /v1/hosts/token");
  }
  if (!host.credential_used_at) {
    await db
      .updateTable("hosts")
      .set({ credential_used_at: now })
      .where("id", "=", host.id)
      .where("credential_used_at", "is", null)
      .execute();
  }
  return host.id;
}
