import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { SandboxInfo } from "@wrenn/proto";
import type { HostRow } from "../db/schema.js";
import { endpointOf } from "../services/host-endpoint.js";
import { rowFieldsFromAgent, stateFromAgent } from "../services/sandbox-info.js";
import type { ServiceDeps } from "../services/service-deps.js";

/** Moves a row from one state to another unless it changed after `notChangedSince`. */
export type SetState = (
  teamId: string,
  sandboxId: string,
  from: "pending",
  to: "running" | "error",
  changes: Record<string, unknown>,
  notChangedSince: Date,
) => Promise<boolean>;

/**
 * Repairs of what a control plane that died mid-operation leaves behind, for one host whose
 * sandboxes were listed at `listedAt` (the database's clock):
 * - a sandbox row `pending` past the transition deadline: the create call that owned it is
 *   gone. The agent running it (and idle) makes it `running`; otherwise it becomes `error`
 *   and whatever the agent has of it is destroyed;
 * - a VM the agent runs with no row, or a `stopped` one, older than the orphan grace: the
 *   database no longer wants it (killed between "stopped" and the destroy, or a fork whose
 *   rows were never written), so it is destroyed.
 */
export async function repairHostSandboxes(
  deps: ServiceDeps,
  host: HostRow,
  listed: readonly SandboxInfo[],
  listedAt: Date,
  setState: SetState,
): Promise<void> {
  const { db, logger } = deps;
  const onAgent = new Map(listed.map((s) => [s.sandboxId, s]));
  const destroy = (sandboxId: string, why: string) =>
    deps.hosts
      .call(endpointOf(host), (c) => c.destroySandbox({ sandboxId }))
      .then(() => logger.info("reconciler destroyed a sandbox", { host: host.id, sandbox: sandboxId, why }))
      .catch((err: unknown) => logger.warn("reconciler destroy failed", { sandbox: sandboxId, err }));

  const pendingBefore = new Date(listedAt.getTime() - deps.config.transitionDeadlineMs);
  const stale = await db
    .selectFrom("sandboxes")
    .select(["id", "team_id"])
    .where("host_id", "=", host.id)
    .where("state", "=", "pending")
    .where("updated_at", "<", pendingBefore)
    .execute();
  for (const row of stale) {
    const info = onAgent.get(row.id);
    if (info?.busy) continue;
    if (info && stateFromAgent(info.state) === "running") {
      await setState(row.team_id, row.id, "pending", "running", rowFieldsFromAgent(info), listedAt);
      continue;
    }
    const moved = await setState(
      row.team_id,
      row.id,
      "pending",
      "error",
      { error: "the create did not finish (its control plane stopped during it)" },
      listedAt,
    );
    if (moved && info) await destroy(row.id, "unfinished create");
  }

  const bornBefore = listedAt.getTime() - deps.config.orphanGraceMs;
  const candidates = listed.filter(
    (s) => !s.busy && s.createdAt !== undefined && timestampDate(s.createdAt).getTime() < bornBefore,
  );
  if (candidates.length === 0) return;
  const rows = await db
    .selectFrom("sandboxes")
    .select(["id", "state"])
    .where(
      "id",
      "in",
      candidates.map((s) => s.sandboxId),
    )
    .execute();
  const stateOf = new Map(rows.map((r) => [r.id, r.state]));
  for (const s of candidates) {
    const state = stateOf.get(s.sandboxId);
    if (state === undefined) await destroy(s.sandboxId, "no sandbox row");
    else if (state === "stopped") await destroy(s.sandboxId, "row stopped");
  }
}

/**
 * Snapshot templates of this host whose snapshot the agent does not hold, past the transition
 * deadline and with their source sandbox not mid-operation: the snapshot call that wrote the
 * row never finished, so the row (which only names a snapshot) goes.
 */
export async function repairHostSnapshots(
  deps: ServiceDeps,
  host: HostRow,
  listed: readonly SandboxInfo[],
  listedAt: Date,
): Promise<void> {
  const { db, logger } = deps;
  const before = new Date(listedAt.getTime() - deps.config.transitionDeadlineMs);
  const rows = await db
    .selectFrom("templates")
    .select(["id", "team_id", "name", "agent_name", "source_sandbox_id"])
    .where("kind", "=", "snapshot")
    .where("host_id", "=", host.id)
    .where("created_at", "<", before)
    .execute();
  if (rows.length === 0) return;
  let held: Set<string>;
  try {
    const res = await deps.hosts.call(endpointOf(host), (c) =>
      c.listSnapshots({}, { timeoutMs: deps.config.pingTimeoutMs * 2 }),
    );
    held = new Set(res.snapshots.map((s) => s.name));
  } catch (err) {
    logger.debug("list snapshots failed", { host: host.id, err });
    return;
  }
  const busy = new Set(listed.filter((s) => s.busy).map((s) => s.sandboxId));
  for (const row of rows) {
    if (!row.agent_name || held.has(row.agent_name)) continue;
    if (row.source_sandbox_id && busy.has(row.source_sandbox_id)) continue;
    await db.deleteFrom("templates").where("id", "=", row.id).execute();
    logger.warn("reconciler removed a snapshot template its host does not hold", {
      host: host.id,
      template: row.id,
      name: row.name,
    });
  }
}
