import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { SandboxRow } from "../db/schema.js";
import type { MetricsService } from "../services/metrics-service.js";
import { startRate } from "../services/metrics-usage.js";
import type { ServiceDeps } from "../services/service-deps.js";
import type { Worker } from "./worker-runner.js";

/** Rows one retention DELETE removes, and the most batches one tick runs. */
const RETENTION_BATCH = 5000;
const RETENTION_MAX_BATCHES = 20;
/** Retention runs at most this often (it need not run on every sample tick). */
const RETENTION_EVERY_MS = 60_000;
/** How far back the sampler looks for new sandboxes (longer than any create takes to commit). */
const RECENT_CREATES_MS = 10 * 60_000;

/** Runs `fn` over `items` with at most `limit` at once. */
async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * Deletes metric rows older than `cutoff`, `batchSize` rows per statement so no statement
 * holds locks for long, at most `maxBatches` statements (the rest waits for the next run).
 * Answers the number of rows deleted.
 */
export async function deleteExpiredMetrics(
  db: Db,
  cutoff: Date,
  batchSize = RETENTION_BATCH,
  maxBatches = RETENTION_MAX_BATCHES,
): Promise<number> {
  let deleted = 0;
  for (const table of ["sandbox_metrics", "team_metrics"] as const) {
    for (let i = 0; i < maxBatches; i++) {
      const result = await sql`
        DELETE FROM ${sql.table(table)} WHERE ctid IN (
          SELECT ctid FROM ${sql.table(table)} WHERE ts < ${cutoff} LIMIT ${batchSize})`.execute(db);
      const n = Number(result.numAffectedRows ?? 0);
      deleted += n;
      if (n < batchSize) break;
    }
  }
  return deleted;
}

interface TeamTotals {
  running: number;
  vcpus: number;
  memoryMiB: number;
  created: number;
}

/**
 * Every `metricsSampleMs`: samples each running sandbox through its agent (a few at once;
 * one that fails is skipped), writes each team's totals (running sandboxes, their vCPUs
 * and memory, the start rate) and, once a minute, deletes rows past the retention.
 * Template-build VMs are not users' sandboxes and are left out.
 */
export function createMetricsSampler(deps: ServiceDeps, metrics: MetricsService): Worker {
  const { db, config, logger } = deps;
  /** The previous tick's time; at first, when the sampler was made (starts since then count). */
  let prevTickMs = deps.now().getTime();
  /** Teams that had running sandboxes last tick: they get one more row (the drop to zero). */
  let activeTeams = new Set<string>();
  let lastRetentionMs = Number.NEGATIVE_INFINITY;
  /** Sandboxes created within RECENT_CREATES_MS as of the previous tick; unset before the first tick. */
  let seenRecent: Set<string> | undefined;

  return {
    name: "metrics-sampler",
    intervalMs: config.metricsSampleMs,
    async tick() {
      const now = deps.now();
      const nowMs = now.getTime();
      // Ticks were missed (another replica held the lease): when it sampled since this one's
      // last tick, go on from its last tick, so the starts it counted are not counted again.
      if (nowMs - prevTickMs > 1.5 * config.metricsSampleMs) {
        const last = await db
          .selectFrom("team_metrics")
          .select((eb) => eb.fn.max("ts").as("ts"))
          .executeTakeFirst();
        const lastMs = last?.ts ? new Date(last.ts).getTime() : null;
        if (lastMs !== null && lastMs > prevTickMs && lastMs <= nowMs) {
          prevTickMs = lastMs;
          seenRecent = undefined;
          const active = await db
            .selectFrom("team_metrics")
            .select("team_id")
            .where("ts", "=", new Date(lastMs))
            .where("running_sandboxes", ">", 0)
            .execute();
          activeTeams = new Set(active.map((r) => r.team_id));
        }
      }
      const running = await db
        .selectFrom("sandboxes")
        .selectAll()
        .where("state", "=", "running")
        .where("build_id", "is", null)
        .execute();
      const timeoutMs = Math.max(100, Math.min(config.pingTimeoutMs, config.metricsSampleMs));
      await forEachLimited(running, config.metricsSampleConcurrency, async (row: SandboxRow) => {
        try {
          await metrics.sampleAndStore(row, timeoutMs);
        } catch (err) {
          logger.debug("metrics sample skipped", { sandbox: row.id, err });
        }
      });

      const teams = new Map<string, TeamTotals>();
      const totalsOf = (teamId: string) => {
        let t = teams.get(teamId);
        if (!t) {
          t = { running: 0, vcpus: 0, memoryMiB: 0, created: 0 };
          teams.set(teamId, t);
        }
        return t;
      };
      for (const row of running) {
        const t = totalsOf(row.team_id);
        t.running++;
        t.vcpus += row.vcpus;
        t.memoryMiB += row.memory_mib;
      }
      // Sandboxes first seen this tick are its starts. Ids, not a created_at window: a create's
      // row commits a while after its created_at, so a window could miss it.
      const recent = await db
        .selectFrom("sandboxes")
        .select(["id", "team_id", "created_at"])
        .where("created_at", ">", new Date(nowMs - RECENT_CREATES_MS))
        .where("build_id", "is", null)
        .execute();
      for (const r of recent) {
        const isNew = seenRecent ? !seenRecent.has(r.id) : r.created_at.getTime() > prevTickMs;
        if (isNew) totalsOf(r.team_id).created++;
      }
      seenRecent = new Set(recent.map((r) => r.id));
      for (const teamId of activeTeams) totalsOf(teamId);
      if (teams.size > 0) {
        await db
          .insertInto("team_metrics")
          .values(
            [...teams].map(([teamId, t]) => ({
              team_id: teamId,
              ts: now,
              running_sandboxes: t.running,
              vcpus: t.vcpus,
              memory_mib: t.memoryMiB,
              sandbox_start_rate: startRate(t.created, prevTickMs, nowMs),
            })),
          )
          .execute();
      }
      activeTeams = new Set([...teams].filter(([, t]) => t.running > 0).map(([id]) => id));
      prevTickMs = nowMs;

      if (nowMs - lastRetentionMs >= RETENTION_EVERY_MS) {
        lastRetentionMs = nowMs;
        const cutoff = new Date(nowMs - config.metricsRetentionHours * 3_600_000);
        const deleted = await deleteExpiredMetrics(db, cutoff);
        if (deleted > 0) logger.debug("expired metrics deleted", { rows: deleted });
      }
    },
  };
}
