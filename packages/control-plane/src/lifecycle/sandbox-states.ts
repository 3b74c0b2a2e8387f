import { WrennError } from "@wrenn/shared";
import type { Updateable } from "kysely";
import type { Db } from "../db/database.js";
import type { SandboxesTable, SandboxRow, SandboxStateName } from "../db/schema.js";

/**
 * The sandbox state machine. `missing` means its host went silent; the reconciler
 * brings it back to what the agent reports once the host answers again.
 */
export const SANDBOX_TRANSITIONS: Record<SandboxStateName, readonly SandboxStateName[]> = {
  pending: ["running", "error", "stopped", "missing"],
  running: ["paused", "stopped", "error", "missing"],
  paused: ["running", "stopped", "error", "missing"],
  missing: ["running", "paused", "stopped", "error"],
  stopped: [],
  error: ["stopped"],
};

export const LIVE_STATES: readonly SandboxStateName[] = ["pending", "running", "paused", "missing"];

export function canTransition(from: SandboxStateName, to: SandboxStateName): boolean {
  return SANDBOX_TRANSITIONS[from].includes(to);
}

/**
 * Moves a sandbox from one of `from` to `to` under a row lock, so two racing callers
 * cannot both win. Returns the row as it was before; throws `conflict` when the sandbox
 * is not in an allowed state. Call it with the top-level database (it opens its own
 * transaction).
 */
export async function transitionSandbox(
  db: Db,
  sandboxId: string,
  from: readonly SandboxStateName[],
  to: SandboxStateName,
  changes: Omit<Updateable<SandboxesTable>, "state" | "updated_at"> = {},
): Promise<SandboxRow> {
  return db.transaction().execute(async (tx) => {
    const before = await tx
      .selectFrom("sandboxes")
      .selectAll()
      .where("id", "=", sandboxId)
      .forUpdate()
      .executeTakeFirst();
    if (!before) throw new WrennError("not_found", `sandbox ${sandboxId} not found`);
    if (!from.includes(before.state) || !canTransition(before.state, to)) {
      throw new WrennError("conflict", `sandbox ${sandboxId} is ${before.state}; cannot move it to ${to}`);
    }
    await tx
      .updateTable("sandboxes")
      .set({
        ...changes,
        state: to,
        updated_at: new Date(),
        ...(to === "stopped" ? { stopped_at: new Date() } : {}),
      })
      .where("id", "=", sandboxId)
      .execute();
    return before;
  });
}

/**
 * Undoes a transition whose RPC failed: puts back the state (and fields) the sandbox had,
 * but only while it is still in the state the transition wrote, so a newer change wins.
 * The operation mark goes back to what it was too (a failed pause leaves a resume's mark).
 */
export async function revertTransition(
  db: Db,
  before: SandboxRow,
  wrote: SandboxStateName,
): Promise<boolean> {
  const res = await db
    .updateTable("sandboxes")
    .set({
      state: before.state,
      stopped_at: before.stopped_at,
      error: before.error,
      operation: before.operation,
      operation_started_at: before.operation_started_at,
      operation_replica: before.operation_replica,
      updated_at: new Date(),
    })
    .where("id", "=", before.id)
    .where("state", "=", wrote)
    .executeTakeFirst();
  return (res.numUpdatedRows ?? 0n) > 0n;
}
