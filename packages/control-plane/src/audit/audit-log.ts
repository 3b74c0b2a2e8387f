import type { Logger } from "@wrenn/shared";
import { WrennError } from "@wrenn/shared";
import type { Actor } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import { newAuditLogId } from "../ids.js";

export interface AuditEntry {
  teamId: string | null;
  actor: Actor;
  action: string;
  resourceType: string;
  resourceId?: string | null | undefined;
  details?: Record<string, unknown>;
}

/** The audit log: one row per mutating action, with its actor and result. */
export class AuditLog {
  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
  ) {}

  async record(entry: AuditEntry, result: "success" | "failure", errorCode?: string): Promise<void> {
    try {
      await this.db
        .insertInto("audit_logs")
        .values({
          id: newAuditLogId(),
          team_id: entry.teamId,
          actor_type: entry.actor.type,
          actor_id: entry.actor.id,
          action: entry.action,
          resource_type: entry.resourceType,
          resource_id: entry.resourceId ?? null,
          result,
          error_code: errorCode ?? null,
          details: JSON.stringify(entry.details ?? {}),
        })
        .execute();
    } catch (err) {
      // A lost audit row must be loud, but it must not turn a done action into a failure.
      this.logger.error("audit write failed", { err, action: entry.action });
    }
  }

  /**
   * Runs an action and records its result. `resourceId` may be learnt from the result
   * (a create's new id).
   */
  async track<T>(
    entry: AuditEntry,
    action: () => Promise<T>,
    resourceIdOf?: (result: T) => string | undefined,
  ): Promise<T> {
    try {
      const result = await action();
      const resourceId = resourceIdOf?.(result) ?? entry.resourceId;
      await this.record({ ...entry, resourceId }, "success");
      return result;
    } catch (err) {
      await this.record(entry, "failure", WrennError.from(err).code);
      throw err;
    }
  }
}
