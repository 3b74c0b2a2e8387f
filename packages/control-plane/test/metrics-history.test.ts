import { applyMigrations, loadMigrations } from "@wrenn/control-plane";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dailyTotals } from "../src/services/metrics-service.js";
import { aggregateUsage, type UsageSample } from "../src/services/metrics-usage.js";
import { deleteExpiredMetrics } from "../src/workers/metrics-sampler.js";
import { DATABASE_KINDS, openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

const GIB = 1024 ** 3;
const DAY0 = Date.parse("2026-03-01T00:00:00Z");
const SAMPLE_MS = 10_000;

/** The metrics tables against each database: usage SQL agrees with the pure rule; retention. */
describe.each(DATABASE_KINDS)("metrics history (%s)", (kind) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    await applyMigrations(t.database.db, await loadMigrations());
    await t.database.db
      .insertInto("teams")
      .values([
        { id: "team_m", name: "M" },
        { id: "team_other", name: "O" },
      ])
      .execute();
  });
  afterAll(async () => {
    await t?.dispose();
  });

  async function insert(teamId: string, samples: UsageSample[]) {
    await t.database.db
      .insertInto("sandbox_metrics")
      .values(
        samples.map((x) => ({
          sandbox_id: x.sandboxId,
          team_id: teamId,
          ts: new Date(x.tsMs),
          cpu_count: x.cpuCount,
          cpu_used_pct: x.cpuUsedPct,
          mem_used: 1,
          mem_total: x.memTotal,
          disk_used: 1,
          disk_total: 2,
        })),
      )
      .execute();
  }

  it("sums usage per UTC day in SQL exactly as the pure rule does", async () => {
    const samples: UsageSample[] = [];
    // Sandbox a: every 10 s across midnight, with jitter and one long gap (a pause).
    for (let i = 0; i < 40; i++) {
      const tsMs = DAY0 + 86_400_000 - 200_000 + i * 10_000 + (i % 3) * 700 + (i >= 30 ? 60_000 : 0);
      samples.push({ sandboxId: "sbx_a", tsMs, cpuCount: 2, cpuUsedPct: (i * 7) % 100, memTotal: GIB });
    }
    // Sandbox b: a few samples, one of them taken on demand between two sampler ticks.
    for (const off of [0, 10_000, 12_500, 20_000]) {
      samples.push({
        sandboxId: "sbx_b",
        tsMs: DAY0 + 3_600_000 + off,
        cpuCount: 1,
        cpuUsedPct: 40,
        memTotal: 2 * GIB,
      });
    }
    await insert("team_m", samples);
    // Another team's samples never count.
    await insert("team_other", [
      { sandboxId: "sbx_x", tsMs: DAY0 + 1000, cpuCount: 8, cpuUsedPct: 100, memTotal: GIB },
    ]);

    const expected = aggregateUsage(samples, SAMPLE_MS);
    const got = await dailyTotals(t.database.db, "team_m", DAY0, SAMPLE_MS);
    expect([...got.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [day, totals] of expected) {
      const g = got.get(day);
      expect(g?.cpuSeconds).toBeCloseTo(totals.cpuSeconds, 6);
      expect(g?.memByteSeconds).toBeCloseTo(totals.memByteSeconds, 0);
      expect(g?.sandboxSeconds).toBeCloseTo(totals.sandboxSeconds, 6);
    }
    // b's on-demand sample splits an interval rather than adding one: 10 + 10 + 2.5 + 7.5 s.
    expect(got.get("2026-03-01")?.sandboxSeconds).toBeGreaterThan(30);
    // A window starting on the second day counts only its samples, with predecessors from before it.
    const second = await dailyTotals(t.database.db, "team_m", DAY0 + 86_400_000, SAMPLE_MS);
    expect([...second.keys()]).toEqual(["2026-03-02"]);
    expect(second.get("2026-03-02")?.sandboxSeconds).toBeCloseTo(
      expected.get("2026-03-02")?.sandboxSeconds ?? -1,
      6,
    );
  });

  it("deletes rows older than the cutoff in batches, from both tables, and keeps the rest", async () => {
    const db = t.database.db;
    const old = DAY0 - 30 * 86_400_000;
    const rows: UsageSample[] = [];
    for (let i = 0; i < 25; i++)
      rows.push({ sandboxId: "sbx_old", tsMs: old + i * 1000, cpuCount: 1, cpuUsedPct: 1, memTotal: 1 });
    await insert("team_m", rows);
    await db
      .insertInto("team_metrics")
      .values([
        { team_id: "team_m", ts: new Date(old), running_sandboxes: 1, vcpus: 1, memory_mib: 512 },
        { team_id: "team_m", ts: new Date(DAY0), running_sandboxes: 2, vcpus: 2, memory_mib: 1024 },
      ])
      .execute();
    const count = async (table: "sandbox_metrics" | "team_metrics") =>
      Number(
        (await db.selectFrom(table).select(db.fn.countAll<string>().as("n")).executeTakeFirstOrThrow()).n,
      );
    const before = await count("sandbox_metrics");
    const cutoff = new Date(DAY0 - 86_400_000);
    // Batches of 10, at most 2 per run: 20 of the 25 old rows go now, the rest next time.
    expect(await deleteExpiredMetrics(db, cutoff, 10, 2)).toBe(21);
    expect(await count("sandbox_metrics")).toBe(before - 20);
    expect(await deleteExpiredMetrics(db, cutoff, 10, 2)).toBe(5);
    expect(await count("sandbox_metrics")).toBe(before - 25);
    expect(await deleteExpiredMetrics(db, cutoff, 10, 2)).toBe(0);
    const left = await db.selectFrom("team_metrics").select("running_sandboxes").execute();
    expect(left.map((r) => r.running_sandboxes)).toEqual([2]);
  });
});
