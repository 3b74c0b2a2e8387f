import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import { hashPresentedSecret } from "./secrets.js";

/** Authenticates a host agent by its long-lived credential (`Authorization: Bearer wrnh_…`). */
export async function authenticateHost(db: Db, authorization: string | undefined): Promise<string> {
  const presented = authorization?.startsWith("Bearer ") ? authorization.slice("Bearer ".length).trim() : "";
  const hash = presented ? hashPresentedSecret("host_credential", presented) : null;
  if (!hash) throw new WrennError("unauthenticated", "a host credential is required");
  const host = await db
    .selectFrom("hosts")
    .select("id")
    .where("credential_hash", "=", hash)
    .executeTakeFirst();
  if (!host) throw new WrennError("unauthenticated", "invalid host credential");
  return host.id;
}
