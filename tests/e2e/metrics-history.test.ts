import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWrenn } from "./cli-runner.js";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

const PREFIX = "wmh";

interface TeamMetric {
  timestampUnix: number;
  concurrentSandboxes: number;
  sandboxStartRate: number;
}

/**
 * The metrics history with a real stack and one real VM: the sampler (every 500 ms here)
 * writes the sandbox's samples and the team's totals; the stock e2b SDK, E2B's team metrics
 * routes, /v1 and `wrenn usage` read them back.
 */
describe("metrics history", () => {
  let stack: Stack;
  let teamId: string;
  let restoreE2bEnv = () => {};

  const get = async <T>(path: string, e2b = false): Promise<{ status: number; body: T }> => {
    const headers: Record<string, string> = e2b
      ? { "x-api-key": e2bFormOfApiKey(stack.apiKey) }
      : { authorization: `Bearer ${stack.apiKey}` };
    const res = await fetch(`${stack.url}${path}`, { headers });
    return { status: res.status, body: (await res.json()) as T };
  };
  const latestTeamMetric = async () => {
    const now = Math.floor(Date.now() / 1000);
    const res = await get<TeamMetric[]>(`/teams/${teamId}/metrics?start=${now - 600}&end=${now + 1}`, true);
    expect(res.status).toBe(200);
    return res.body.at(-1);
  };

  beforeAll(async () => {
    stack = await startStack({
      agents: [{ netNamePrefix: PREFIX, firstSlot: 5400, maxSlots: 2 }],
      metricsSampleMs: 500,
    });
    restoreE2bEnv = pointE2bSdkAt(stack.url, e2bFormOfApiKey(stack.apiKey));
    const team = await stack.cp.database.db
      .selectFrom("teams")
      .select("id")
      .where("is_admin", "=", true)
      .executeTakeFirstOrThrow();
    teamId = team.id;
  }, 240_000);

  afterAll(async () => {
    restoreE2bEnv();
    if (!stack) return;
    for (const s of await Sandbox.list()
      .nextItems()
      .catch(() => []))
      await Sandbox.kill(s.sandboxId);
    const dataDir = stack.agents[0]?.dataDir ?? "";
    await stack.close();
    expect(findHostLeftovers(dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("samples a running sandbox into a series, counts it in the team's totals, then 0 once killed; usage has today", async () => {
    const sbx = await Sandbox.create({ timeoutMs: 300_000 });
    // Some CPU work, so CPU-minutes are more than idle rounding.
    await sbx.commands.run("timeout 2 sh -c 'while :; do :; done' || true");
    await new Promise((r) => setTimeout(r, 3000));

    // The stock SDK: several points over a few seconds, in order, real values.
    const series = await sbx.getMetrics();
    expect(series.length).toBeGreaterThanOrEqual(4);
    const times = series.map((m) => m.timestamp.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(series.every((m) => m.memTotal > 0 && m.cpuCount > 0 && m.diskTotal > 0)).toBe(true);
    expect(series.some((m) => m.cpuUsedPct > 0)).toBe(true);
    // A range answers only its samples.
    const mid = new Date(times[Math.floor(times.length / 2)] ?? 0);
    const later = await sbx.getMetrics({ start: mid });
    expect(later.length).toBeGreaterThanOrEqual(1);
    expect(later.length).toBeLessThan((await sbx.getMetrics()).length);
    expect(later.every((m) => m.timestamp.getTime() >= Math.floor(mid.getTime() / 1000) * 1000)).toBe(true);

    // The same series over /v1.
    const v1 = await get<{ items: { timestamp: string; cpu_count: number; mem_total_bytes: number }[] }>(
      `/v1/sandboxes/${sbx.sandboxId}/metrics`,
    );
    expect(v1.status).toBe(200);
    expect(v1.body.items.length).toBeGreaterThanOrEqual(4);
    expect(v1.body.items[0]?.mem_total_bytes).toBeGreaterThan(0);

    // Team totals: one running sandbox, through E2B's routes and /v1.
    await expect.poll(async () => (await latestTeamMetric())?.concurrentSandboxes, { timeout: 5000 }).toBe(1);
    const max = await get<{ value: number; timestampUnix: number }>(
      `/teams/${teamId}/metrics/max?metric=concurrent_sandboxes`,
      true,
    );
    expect(max.status).toBe(200);
    expect(max.body.value).toBe(1);
    const startRate = await get<{ value: number }>(
      `/teams/${teamId}/metrics/max?metric=sandbox_start_rate`,
      true,
    );
    expect(startRate.body.value).toBeGreaterThan(0);
    const team = await get<{ items: { running_sandboxes: number; vcpus: number; memory_mib: number }[] }>(
      "/v1/team/metrics",
    );
    expect(team.status).toBe(200);
    expect(team.body.items.at(-1)).toMatchObject({ running_sandboxes: 1 });
    expect(team.body.items.at(-1)?.vcpus).toBeGreaterThan(0);
    expect(team.body.items.at(-1)?.memory_mib).toBeGreaterThan(0);
    // Another team's metrics are refused, as E2B refuses them.
    const other = await get<{ code: number }>("/teams/team_someone_else/metrics", true);
    expect(other.status).toBe(403);
    expect(other.body.code).toBe(403);

    await sbx.kill();
    await expect.poll(async () => (await latestTeamMetric())?.concurrentSandboxes, { timeout: 5000 }).toBe(0);
    // The history outlives the sandbox.
    const after = await get<{ items: unknown[] }>(`/v1/sandboxes/${sbx.sandboxId}/metrics`);
    expect(after.body.items.length).toBeGreaterThanOrEqual(series.length);

    // Usage: today's row has CPU, memory and sandbox time.
    const usage = await get<{
      items: { date: string; cpu_minutes: number; memory_gib_hours: number; sandbox_hours: number }[];
    }>("/v1/usage?days=2");
    expect(usage.status).toBe(200);
    expect(usage.body.items).toHaveLength(2);
    const today = usage.body.items.at(-1);
    expect(today?.date).toBe(new Date().toISOString().slice(0, 10));
    expect(today?.cpu_minutes).toBeGreaterThan(0);
    expect(today?.memory_gib_hours).toBeGreaterThan(0);
    expect(today?.sandbox_hours).toBeGreaterThan(0);
    // Running for a few seconds is a few seconds of sandbox time, not minutes.
    expect((today?.sandbox_hours ?? 0) * 3600).toBeLessThan(120);

    // The CLI prints the same days.
    const cli = await runWrenn(["usage", "--days", "2", "--json"], {
      WRENN_API_URL: stack.url,
      WRENN_API_KEY: stack.apiKey,
    });
    expect(cli.code, cli.stderr).toBe(0);
    const cliDays = JSON.parse(cli.stdout) as { date: string; cpuMinutes: number }[];
    expect(cliDays.map((d) => d.date)).toEqual(usage.body.items.map((d) => d.date));
    expect(cliDays.at(-1)?.cpuMinutes).toBeGreaterThan(0);
  }, 180_000);
});
