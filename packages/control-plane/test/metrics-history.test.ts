import { afterEach, describe, expect, it } from "vitest";
import { type E2bMetric, MetricsHistory } from "../src/e2b/metrics-history.js";

function metricAt(ms: number, cpuUsedPct = 1): E2bMetric {
  return {
    timestamp: new Date(ms).toISOString(),
    timestampUnix: Math.floor(ms / 1000),
    cpuCount: 2,
    cpuUsedPct,
    memUsed: 1,
    memTotal: 2,
    memCache: 0,
    diskUsed: 1,
    diskTotal: 2,
  };
}

describe("MetricsHistory", () => {
  let history: MetricsHistory | undefined;
  afterEach(() => history?.close());

  it("answers only the samples inside [start, end], in seconds", async () => {
    let now = 1_000_000_000;
    history = new MetricsHistory({ intervalMs: 5000, maxSamples: 100, idleMs: 60_000, now: () => now });
    const sample = async () => metricAt(now);
    // Requests 10 s apart each take one sample (the background timer is slower than this test).
    for (let i = 0; i < 5; i++) {
      await history.query("sbx", sample);
      now += 10_000;
    }
    const startSec = 1_000_000 + 10;
    const endSec = 1_000_000 + 30;
    const inRange = await history.query("sbx", sample, startSec, endSec);
    expect(inRange.map((m) => m.timestampUnix)).toEqual([1_000_010, 1_000_020, 1_000_030]);
    // A range in the future (or entirely before the sandbox) is empty, never the current point.
    expect(await history.query("sbx", sample, 2_000_000_000, 2_000_000_100)).toEqual([]);
    expect(await history.query("sbx", sample, 1, 2)).toEqual([]);
    // No range: everything kept, ending with a fresh sample.
    const all = await history.query("sbx", sample);
    expect(all).toHaveLength(6);
    expect(all.at(-1)?.timestampUnix).toBe(Math.floor(now / 1000));
  });

  it("samples in the background after the first request, up to the bound, and stops when sampling fails", async () => {
    let calls = 0;
    let running = true;
    history = new MetricsHistory({ intervalMs: 20, maxSamples: 5, idleMs: 60_000, now: Date.now });
    const sample = async () => {
      if (!running) throw new Error("not running");
      calls++;
      return metricAt(Date.now(), calls);
    };
    await history.query("sbx", sample);
    await expect.poll(() => calls, { timeout: 2000 }).toBeGreaterThanOrEqual(8);
    const kept = await history.query("sbx", sample);
    expect(kept.length).toBeLessThanOrEqual(5);
    // The oldest go first: what is kept is the newest, in order.
    expect(kept.map((m) => m.cpuUsedPct)).toEqual([...kept.map((m) => m.cpuUsedPct)].sort((a, b) => a - b));
    expect(kept.at(-1)?.cpuUsedPct).toBeGreaterThanOrEqual(8);
    running = false;
    const before = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(before);
    await expect(history.query("sbx", sample)).rejects.toThrow("not running");
  });

  it("stops sampling a sandbox nobody asks about", async () => {
    let calls = 0;
    history = new MetricsHistory({ intervalMs: 10, maxSamples: 100, idleMs: 50, now: Date.now });
    await history.query("sbx", async () => {
      calls++;
      return metricAt(Date.now());
    });
    await new Promise((r) => setTimeout(r, 200));
    const settled = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(settled);
    expect(settled).toBeLessThan(12);
  });
});
