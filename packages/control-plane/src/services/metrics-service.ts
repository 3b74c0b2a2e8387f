import { timestampDate } from "@bufbuild/protobuf/wkt";
import { WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import type { SandboxRow } from "../db/schema.js";
import { type UsageDay, type UsageTotals, usageDays, usageWindowStartMs } from "./metrics-usage.js";
import type { SandboxesService } from "./sandboxes-service.js";
import type { ServiceDeps } from "./service-deps.js";

/** One stored sample of a sandbox. */
export interface SandboxSample {
  ts: Date;
  cpuCount: number;
  cpuUsedPct: number;
  memUsed: number;
  memTotal: number;
  diskUsed: number;
  diskTotal: number;
}

/** A team's totals at one sampler tick. */
export interface TeamSample {
  ts: Date;
  runningSandboxes: number;
  vcpus: number;
  memoryMiB: number;
  sandboxStartRate: number;
}

export type TeamMaxMetric = "concurrent_sandboxes" | "sandbox_start_rate";

/** A range in milliseconds; either end open. */
export interface TimeRange {
  startMs?: number | undefined;
  endMs?: number | undefined;
}

/** Most points one range query answers (the oldest beyond it are left out). */
const MAX_POINTS = 10_000;

/**
 * Metrics history: samples the metrics sampler (workers/metrics-sampler.ts) writes, read
 * back per sandbox, per team and as daily usage, always within the caller's team.
 */
export class MetricsService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly sandboxes: SandboxesService,
  ) {}

  /** Samples a running sandbox through its agent and stores the sample. */
  async sampleAndStore(row: SandboxRow, timeoutMs?: number): Promise<SandboxSample> {
    const m = await this.sandboxes.metricsOf(row, timeoutMs);
    const sample: SandboxSample = {
      ts: m.timestamp ? timestampDate(m.timestamp) : this.deps.now(),
      cpuCount: m.cpuCount,
      cpuUsedPct: m.cpuUsedPct,
      memUsed: Number(m.memUsedBytes),
      memTotal: Number(m.memTotalBytes),
      diskUsed: Number(m.diskUsedBytes),
      diskTotal: Number(m.diskTotalBytes),
    };
    await this.deps.db
      .insertInto("sandbox_metrics")
      .values({
        sandbox_id: row.id,
        team_id: row.team_id,
        ts: sample.ts,
        cpu_count: sample.cpuCount,
        cpu_used_pct: sample.cpuUsedPct,
        mem_used: sample.memUsed,
        mem_total: sample.memTotal,
        disk_used: sample.diskUsed,
        disk_total: sample.diskTotal,
      })
      .execute();
    return sample;
  }

  /**
   * A sandbox's samples in a range, oldest first. A running sandbox whose newest sample is
   * older than the sample interval is sampled first, so an open range ends with its current
   * state even before the sampler's first tick.
   */
  async sandboxSeries(principal: Principal, id: string, range: TimeRange): Promise<SandboxSample[]> {
    const row = await this.sandboxes.get(principal, id);
    if (row.state === "running" && range.endMs === undefined) {
      const newest = await this.deps.db
        .selectFrom("sandbox_metrics")
        .select("ts")
        .where("sandbox_id", "=", id)
        .orderBy("ts", "desc")
        .limit(1)
        .executeTakeFirst();
      const ageMs = newest ? this.deps.now().getTime() - newest.ts.getTime() : Number.POSITIVE_INFINITY;
      if (ageMs >= this.deps.config.metricsSampleMs) {
        try {
          await this.sampleAndStore(row);
        } catch (err) {
          // It stopped running meanwhile, or its host is away: answer what is stored.
          this.deps.logger.debug("on-demand metrics sample failed", { sandbox: id, err });
        }
      }
    }
    let q = this.deps.db
      .selectFrom("sandbox_metrics")
      .selectAll()
      .where("sandbox_id", "=", id)
      .where("team_id", "=", principal.teamId);
    if (range.startMs !== undefined) q = q.where("ts", ">=", new Date(range.startMs));
    if (range.endMs !== undefined) q = q.where("ts", "<=", new Date(range.endMs));
    const rows = await q.orderBy("ts", "desc").limit(MAX_POINTS).execute();
    return rows.reverse().map((r) => ({
      ts: r.ts,
      cpuCount: r.cpu_count,
      cpuUsedPct: r.cpu_used_pct,
      memUsed: Number(r.mem_used),
      memTotal: Number(r.mem_total),
      diskUsed: Number(r.disk_used),
      diskTotal: Number(r.disk_total),
    }));
  }

  /** The caller's team totals in a range, oldest first. */
  async teamSeries(principal: Principal, range: TimeRange): Promise<TeamSample[]> {
    let q = this.deps.db.selectFrom("team_metrics").selectAll().where("team_id", "=", principal.teamId);
    if (range.startMs !== undefined) q = q.where("ts", ">=", new Date(range.startMs));
    if (range.endMs !== undefined) q = q.where("ts", "<=", new Date(range.endMs));
    const rows = await q.orderBy("ts", "desc").limit(MAX_POINTS).execute();
    return rows.reverse().map((r) => ({
      ts: r.ts,
      runningSandboxes: r.running_sandboxes,
      vcpus: r.vcpus,
      memoryMiB: Number(r.memory_mib),
      sandboxStartRate: r.sandbox_start_rate,
    }));
  }

  /** The team row with the largest value of one metric in a range (the earliest of equals); null when none. */
  async teamMax(
    principal: Principal,
    metric: TeamMaxMetric,
    range: TimeRange,
  ): Promise<{ ts: Date; value: number } | null> {
    const column = metric === "concurrent_sandboxes" ? "running_sandboxes" : "sandbox_start_rate";
    let q = this.deps.db
      .selectFrom("team_metrics")
      .select(["ts", `${column} as value`])
      .where("team_id", "=", principal.teamId);
    if (range.startMs !== undefined) q = q.where("ts", ">=", new Date(range.startMs));
    if (range.endMs !== undefined) q = q.where("ts", "<=", new Date(range.endMs));
    const row = await q.orderBy(column, "desc").orderBy("ts", "asc").limit(1).executeTakeFirst();
    return row ? { ts: row.ts, value: Number(row.value) } : null;
  }

  /**
   * The caller's team usage over the last `days` UTC days (today included), oldest first.
   * Each sample stands for the time since its sandbox's previous one (metrics-usage.ts has
   * the rule; this SQL applies it where the rows are).
   */
  async usage(principal: Principal, days: number): Promise<UsageDay[]> {
    if (!Number.isInteger(days) || days < 1)
      throw new WrennError("invalid_argument", "days must be at least 1");
    const nowMs = this.deps.now().getTime();
    const fromMs = usageWindowStartMs(days, nowMs);
    const totals = await dailyTotals(
      this.deps.db,
      principal.teamId,
      fromMs,
      this.deps.config.metricsSampleMs,
    );
    return usageDays(totals, days, nowMs);
  }
}

/**
 * Per-UTC-day sums of a team's samples from `fromMs` on, with metrics-usage.ts's rule for
 * the time each sample stands for (the same as aggregateUsage, done where the rows are).
 */
export async function dailyTotals(
  db: Db,
  teamId: string,
  fromMs: number,
  sampleMs: number,
): Promise<Map<string, UsageTotals>> {
  const sampleSec = sampleMs / 1000;
  const from = new Date(fromMs);
  // The previous sample of a sandbox may sit before the window: look back two intervals.
  const lookBack = new Date(fromMs - 2 * sampleMs);
  const result = await sql<{
    day: string;
    cpu_seconds: number;
    mem_byte_seconds: number;
    sandbox_seconds: number;
  }>`
      SELECT to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day,
        sum(sec * cpu_count * cpu_used_pct / 100)::float8 AS cpu_seconds,
        sum(sec * mem_total)::float8 AS mem_byte_seconds,
        sum(sec)::float8 AS sandbox_seconds
      FROM (
        SELECT ts, cpu_count, cpu_used_pct, mem_total,
          CASE WHEN gap IS NOT NULL AND gap >= 0 AND gap <= ${2 * sampleSec}::float8 THEN gap
            ELSE ${sampleSec}::float8 END AS sec
        FROM (
          SELECT ts, cpu_count, cpu_used_pct, mem_total,
            EXTRACT(EPOCH FROM ts - lag(ts) OVER (PARTITION BY sandbox_id ORDER BY ts))::float8 AS gap
          FROM sandbox_metrics
          WHERE team_id = ${teamId} AND ts >= ${lookBack}
        ) g
      ) s
      WHERE ts >= ${from}
      GROUP BY day`.execute(db);
  return new Map(
    result.rows.map((r) => [
      r.day,
      {
        cpuSeconds: Number(r.cpu_seconds),
        memByteSeconds: Number(r.mem_byte_seconds),
        sandboxSeconds: Number(r.sandbox_seconds),
      },
    ]),
  );
}
