import type { Db } from "../db/database.js";
import type { SandboxOperation } from "../db/schema.js";

/**
 * Operation marks: a pause or resume writes its outcome to the sandbox row before it asks the
 * agent, and marks the row until the agent call ends. While the mark is live the agent may
 * still report the state from before the call, which the reconciler must not copy back, and
 * traffic must wait rather than reach a VM mid-restore.
 */

/** The fields that start a mark (pass them to `transitionSandbox`); `replicaId` makes the call. */
export function startOperation(
  operation: SandboxOperation,
  replicaId: string,
): { operation: SandboxOperation; operation_started_at: Date; operation_replica: string } {
  return { operation, operation_started_at: new Date(), operation_replica: replicaId };
}

/** The agent call of `operation` has ended (either way): the mark goes. */
export async function endOperation(db: Db, sandboxId: string, operation: SandboxOperation): Promise<void> {
  await db
    .updateTable("sandboxes")
    .set({ operation: null, operation_started_at: null, operation_replica: null })
    .where("id", "=", sandboxId)
    .where("operation", "=", operation)
    .execute();
}

/** A row's mark, with the last heartbeat of the replica that made it (null: no replica row). */
export interface OperationMark {
  operation: SandboxOperation | null;
  startedAt: Date | null;
  replica: string | null;
  replicaSeenAt: Date | null;
}

/** How marks are judged: this replica, the replica-liveness TTL, the transition deadline. */
export interface MarkJudge {
  self: string;
  replicaTtlMs: number;
  deadlineMs: number;
}

/**
 * Whether a mark still stands at `now` (the database's clock): its call can still be under
 * way. A mark of this replica's own stands (its call ends in this process); another replica's
 * stands while that replica heartbeats; none stands past the transition deadline.
 */
export function markStands(mark: OperationMark, judge: MarkJudge, now: Date): boolean {
  if (!mark.operation || !mark.startedAt) return false;
  if (mark.startedAt.getTime() <= now.getTime() - judge.deadlineMs) return false;
  if (mark.replica === judge.self) return true;
  return mark.replicaSeenAt !== null && mark.replicaSeenAt.getTime() > now.getTime() - judge.replicaTtlMs;
}
