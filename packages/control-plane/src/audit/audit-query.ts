import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import { afterCursor, beforeCursor } from "../db/keyset.js";
import type { AuditLogRow } from "../db/schema.js";
import { decodeCursor } from "../validation.js";

export interface ListAuditLogsInput {
  limit: number;
  cursor?: string | undefined;
  action?: string | undefined;
  resourceId?: string | undefined;
  /** "desc": newest first (the cursor then pages towards older entries). */
  order?: "asc" | "desc" | undefined;
}

/** A page of the caller's team's audit log, oldest first unless asked (keyset pagination). */
export async function listAuditLogs(
  db: Db,
  principal: Principal,
  input: ListAuditLogsInput,
): Promise<AuditLogRow[]> {
  const cursor = decodeCursor(input.cursor);
  let query = db
    .selectFrom("audit_logs")
    .selectAll()
    .where("team_id", "=", principal.teamId)
    .orderBy("created_at", input.order ?? "asc")
    .orderBy("id", input.order ?? "asc")
    .limit(input.limit + 1);
  if (input.action) query = query.where("action", "=", input.action);
  if (input.resourceId) query = query.where("resource_id", "=", input.resourceId);
  if (cursor) query = query.where(input.order === "desc" ? beforeCursor(cursor) : afterCursor(cursor));
  return query.execute();
}
