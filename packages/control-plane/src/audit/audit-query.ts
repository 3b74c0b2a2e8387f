import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import { afterCursor } from "../db/keyset.js";
import type { AuditLogRow } from "../db/schema.js";
import { decodeCursor } from "../validation.js";

/** A page of the caller's team's audit log, oldest first (keyset pagination). */
export async function listAuditLogs(
  db: Db,
  principal: Principal,
  input: {
    limit: number;
    cursor?: string | undefined;
    action?: string | undefined;
    resourceId?: string | undefined;
  },
): Promise<AuditLogRow[]> {
  const cursor = decodeCursor(input.cursor);
  let query = db
    .selectFrom("audit_logs")
    .selectAll()
    .where("team_id", "=", principal.teamId)
    .orderBy("created_at")
    .orderBy("id")
    .limit(input.limit + 1);
  if (input.action) query = query.where("action", "=", input.action);
  if (input.resourceId) query = query.where("resource_id", "=", input.resourceId);
  if (cursor) query = query.where(afterCursor(cursor));
  return query.execute();
}
