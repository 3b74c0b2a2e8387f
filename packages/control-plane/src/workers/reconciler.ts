import { sql } from "kysely";
import { SYSTEM_ACTOR } from "../auth/principal.js";
import type { HostRow, SandboxStateName } from "../db/schema.js";
import type { EventType } from "../events/event-bus.js";
import { markStands } from "../lifecycle/operation-marks.js";
import { canTransition, LIVE_STATES } from "../lifecycle/sandbox-states.js";
import { endpointOf } from "../services/host-endpoint.js";
import { rowFieldsFromAgent, stateFromAgent } from "../services/sandbox-info.js";
import type { ServiceDeps } from "../services/service-deps.js";
import { repairHostSandboxes, repairHostSnapshots } from "./reconcile-repairs.js";
import type { Worker } from "./worker-runner.js";

const EVENT_FOR_STATE: Partial<Record<SandboxStateName, EventType>> = {
  running: "sandbox.running",
  paused: "sandbox.paused",
  stopped: "sandbox.destroyed",
  error: "sandbox.error",
  missing: "sandbox.missing",
};

/**
 * Keeps the database true to the hosts:
 * - a host silent past the deadline becomes unreachable and its running and paused
 *   sandboxes missing (pending ones belong to the create call in flight, which fails itself);
 *   so do the sandboxes of a revoked host;
 * - each up host's ListSandboxes is compared with the database: sandboxes the agent
 *   paused (inactivity) become paused, ones it no longer has become stopped, missing ones
 *   it still has come back. Paused sandboxes the agent does not list are left alone (a
 *   paused sandbox has no VM). Rows changed after the listing was taken are skipped, and so
 *   are rows whose pause or resume call may not have ended (lifecycle/operation-marks.ts: while
 *   the replica making it lives, up to the transition deadline): the agent may not have been
 *   told yet, and its state then is not news;
 * - what a control plane that died mid-operation left is settled (reconcile-repairs.ts).
 */
export function createReconciler(deps: ServiceDeps): Worker {
  const { db, events, audit, logger } = deps;

  async function setState(
    teamId: string,
    sandboxId: string,
    from: SandboxStateName,
    to: SandboxStateName,
    changes: Record<string, unknown> = {},
    notChangedSince?: Date,
  ): Promise<boolean> {
    if (!canTransition(from, to)) return false;
    let query = db
      .updateTable("sandboxes")
      .set({
        ...changes,
        state: to,
        // An operation still marked on the row is past its deadline here: its call is over.
        operation: null,
        operation_started_at: null,
        operation_replica: null,
        // The database's clock, the one `notChangedSince` is read from.
        updated_at: sql<Date>`now()`,
        ...(to === "stopped" ? { stopped_at: sql<Date>`now()` } : {}),
      })
      .where("id", "=", sandboxId)
      .where("state", "=", from);
    if (notChangedSince) query = query.where("updated_at", "<", notChangedSince);
    const res = await query.executeTakeFirst();
    if ((res.numUpdatedRows ?? 0n) === 0n) return false;
    const type = EVENT_FOR_STATE[to];
    if (type) events.publish(type, teamId, { sandbox_id: sandboxId, reason: "reconcile", from });
    await audit.record(
      {
        teamId,
        actor: SYSTEM_ACTOR,
        action: `sandbox.reconcile.${to}`,
        resourceType: "sandbox",
        resourceId: sandboxId,
        details: { from },
      },
      "success",
    );
    return true;
  }

  async function markSilentHosts(): Promise<void> {
    const deadline = new Date(deps.now().getTime() - deps.config.hostDeadlineMs);
    const silent = await db
      .updateTable("hosts")
      .set({ state: "unreachable" })
      .where("state", "=", "up")
      .where((eb) => eb.or([eb("last_seen_at", "<", deadline), eb("last_seen_at", "is", null)]))
      .returningAll()
      .execute();
    for (const host of silent) {
      logger.warn("host unreachable", { host: host.id });
      events.publish("host.down", host.team_id, { host_id: host.id, name: host.name });
      await audit.record(
        {
          teamId: host.team_id,
          actor: SYSTEM_ACTOR,
          action: "host.down",
          resourceType: "host",
          resourceId: host.id,
        },
        "success",
      );
      const sandboxes = await db
        .selectFrom("sandboxes")
        .select(["id", "team_id", "state"])
        .where("host_id", "=", host.id)
        .where("state", "in", ["running", "paused"])
        .execute();
      for (const s of sandboxes) await setState(s.team_id, s.id, s.state, "missing");
    }
  }

  /** A revoked host is never asked again: its running and paused sandboxes are missing. */
  async function markRevokedHostsSandboxes(): Promise<void> {
    const orphaned = await db
      .selectFrom("sandboxes")
      .innerJoin("hosts", "hosts.id", "sandboxes.host_id")
      .select(["sandboxes.id", "sandboxes.team_id", "sandboxes.state"])
      .where("hosts.state", "=", "revoked")
      .where("sandboxes.state", "in", ["running", "paused"])
      .execute();
    for (const s of orphaned) await setState(s.team_id, s.id, s.state, "missing");
  }

  async function compareHost(host: HostRow): Promise<void> {
    // The database's clock: rows are compared with it, whichever machine wrote them.
    const listedAt = (await sql<{ now: Date }>`SELECT now() AS now`.execute(db)).rows[0]?.now ?? deps.now();
    let listed: Awaited<ReturnType<ReturnType<typeof deps.hosts.client>["listSandboxes"]>>;
    try {
      listed = await deps.hosts.call(endpointOf(host), (c) =>
        c.listSandboxes({}, { timeoutMs: deps.config.pingTimeoutMs * 2 }),
      );
    } catch (err) {
      logger.debug("list sandboxes failed", { host: host.id, err });
      return;
    }
    const onAgent = new Map(listed.sandboxes.map((s) => [s.sandboxId, s]));
    const rows = await db
      .selectFrom("sandboxes")
      .leftJoin("replicas", "replicas.id", "sandboxes.operation_replica")
      .select([
        "sandboxes.id",
        "sandboxes.team_id",
        "sandboxes.state",
        "sandboxes.operation",
        "sandboxes.operation_started_at",
        "sandboxes.operation_replica",
        "replicas.last_seen_at",
      ])
      .where("sandboxes.host_id", "=", host.id)
      .where("sandboxes.state", "in", LIVE_STATES)
      .execute();
    const judge = {
      self: deps.replica.id,
      replicaTtlMs: deps.config.leaseTtlMs,
      deadlineMs: deps.config.transitionDeadlineMs,
    };
    for (const row of rows) {
      if (row.state === "pending") continue;
      // A pause or resume whose call may not have reached the agent yet: the row is ahead of it.
      const mark = {
        operation: row.operation,
        startedAt: row.operation_started_at,
        replica: row.operation_replica,
        replicaSeenAt: row.last_seen_at,
      };
      if (markStands(mark, judge, listedAt)) continue;
      const info = onAgent.get(row.id);
      // Mid-operation (pause, resume, snapshot) the agent's state is about to change.
      if (info?.busy) continue;
      const agentState = info ? stateFromAgent(info.state) : null;
      if (!info) {
        if (row.state === "paused") continue;
        await setState(row.team_id, row.id, row.state, "stopped", {}, listedAt);
        continue;
      }
      if (!agentState || agentState === "pending" || agentState === row.state) continue;
      const changes =
        agentState === "error" ? { error: info.error || "failed on the host" } : rowFieldsFromAgent(info);
      await setState(row.team_id, row.id, row.state, agentState, changes, listedAt);
    }
    await repairHostSandboxes(deps, host, listed.sandboxes, listedAt, setState);
    await repairHostSnapshots(deps, host, listed.sandboxes, listedAt);
  }

  return {
    name: "reconciler",
    intervalMs: deps.config.reconcileIntervalMs,
    async tick() {
      await markSilentHosts();
      await markRevokedHostsSandboxes();
      const up = await db.selectFrom("hosts").selectAll().where("state", "=", "up").execute();
      await Promise.all(up.map(compareHost));
    },
  };
}
