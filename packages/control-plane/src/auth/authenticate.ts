import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { Principal } from "./principal.js";
import { hashPresentedSecret } from "./secrets.js";

export interface CredentialHeaders {
  authorization?: string | undefined;
  "x-api-key"?: string | string[] | undefined;
}

/** The API key a request carries: `Authorization: Bearer <key>` or `X-API-Key: <key>`. */
export function presentedApiKey(headers: CredentialHeaders): string | null {
  const auth = headers.authorization;
  if (auth?.startsWith("Bearer ")) return auth.slice("Bearer ".length).trim();
  const key = headers["x-api-key"];
  if (typeof key === "string" && key !== "") return key.trim();
  return null;
}

/** last_used_at is refreshed at most this often per key (a write per request is wasteful). */
const LAST_USED_GRANULARITY_MS = 60_000;

export async function authenticateApiKey(db: Db, presented: string | null, now: Date): Promise<Principal> {
  if (!presented)
    throw new WrennError("unauthenticated", "an API key is required (Authorization: Bearer or X-API-Key)");
  const hash = hashPresentedSecret("api_key", presented);
  if (!hash) throw new WrennError("unauthenticated", "malformed API key");
  const row = await db
    .selectFrom("api_keys")
    .innerJoin("teams", "teams.id", "api_keys.team_id")
    .select(["api_keys.id", "api_keys.team_id", "api_keys.last_used_at", "teams.is_admin"])
    .where("api_keys.key_hash", "=", hash)
    .where("api_keys.revoked_at", "is", null)
    .executeTakeFirst();
  if (!row) throw new WrennError("unauthenticated", "invalid or revoked API key");
  if (!row.last_used_at || now.getTime() - row.last_used_at.getTime() > LAST_USED_GRANULARITY_MS) {
    await db.updateTable("api_keys").set({ last_used_at: now }).where("id", "=", row.id).execute();
  }
  return { teamId: row.team_id, isAdmin: row.is_admin, actor: { type: "api_key", id: row.id } };
}
