import { describe, expect, it } from "vitest";
import {
  aggregateUsage,
  sampleSeconds,
  startRate,
  type UsageSample,
  usageDays,
  usageWindowStartMs,
} from "../src/services/metrics-usage.js";

const GIB = 1024 ** 3;
const DAY0 = Date.parse("2026-03-01T00:00:00Z");

function s(sandboxId: string, tsMs: number, cpuUsedPct: number, cpuCount = 2, memTotal = GIB): UsageSample {
  return { sandboxId, tsMs, cpuCount, cpuUsedPct, memTotal };
}

describe("usage arithmetic", () => {
  it("counts a sample for the gap since the sandbox's previous one, or one interval", () => {
    expect(sampleSeconds(undefined, 10_000, 10_000)).toBe(10);
    expect(sampleSeconds(0, 7_000, 10_000)).toBe(7);
    expect(sampleSeconds(0, 20_000, 10_000)).toBe(20);
    // Longer than two intervals: it was paused or the sampler was down; one interval counts.
    expect(sampleSeconds(0, 20_001, 10_000)).toBe(10);
    expect(sampleSeconds(5_000, 1_000, 10_000)).toBe(10);
  });

  it("sums CPU, memory and time per UTC day, per sandbox, in any order", () => {
    const samples = [
      s("b", DAY0 + 10_000, 100, 1),
      s("a", DAY0 + 10_000, 50),
      s("a", DAY0 + 20_000, 50),
      s("a", DAY0 + 30_000, 100),
      // Next day, after a long gap: one interval.
      s("a", DAY0 + 86_400_000 + 5_000, 25),
    ];
    const days = aggregateUsage(samples, 10_000);
    // Day 1: a: 3 samples × 10 s with 2 vCPUs at 50,50,100 % → 10+10+20 = 40 CPU-s; b: 10 s × 1 × 100 % → 10.
    expect(days.get("2026-03-01")).toEqual({
      cpuSeconds: 50,
      memByteSeconds: 40 * GIB,
      sandboxSeconds: 40,
    });
    expect(days.get("2026-03-02")).toEqual({ cpuSeconds: 5, memByteSeconds: 10 * GIB, sandboxSeconds: 10 });
  });

  it("answers the last N UTC days ending today in API units, zeros where nothing ran", () => {
    const totals = new Map([
      ["2026-03-02", { cpuSeconds: 120, memByteSeconds: 2 * GIB * 3600, sandboxSeconds: 1800 }],
    ]);
    const now = Date.parse("2026-03-03T12:00:00Z");
    expect(usageDays(totals, 3, now)).toEqual([
      { date: "2026-03-01", cpuMinutes: 0, memoryGibHours: 0, sandboxHours: 0 },
      { date: "2026-03-02", cpuMinutes: 2, memoryGibHours: 2, sandboxHours: 0.5 },
      { date: "2026-03-03", cpuMinutes: 0, memoryGibHours: 0, sandboxHours: 0 },
    ]);
    expect(usageWindowStartMs(3, now)).toBe(DAY0);
    expect(usageWindowStartMs(1, now)).toBe(Date.parse("2026-03-03T00:00:00Z"));
  });

  it("computes the start rate per second between team rows", () => {
    expect(startRate(3, undefined, 10_000)).toBe(0);
    expect(startRate(3, 0, 1_500)).toBe(2);
    expect(startRate(0, 0, 1_000)).toBe(0);
  });
});
