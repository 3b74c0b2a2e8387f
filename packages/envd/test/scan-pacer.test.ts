import { describe, expect, it } from "vitest";
import { ScanPacer } from "../src/ports/scan-pacer.js";

describe("ScanPacer", () => {
  const pace = { activeMs: 1000, idleMs: 8000, quietAfterMs: 30_000 };

  it("scans at the active pace until the guest has been quiet, then doubles up to the idle pace", () => {
    const p = new ScanPacer(pace, 0);
    expect(p.next(false, 1000)).toBe(1000);
    expect(p.next(false, 29_000)).toBe(1000);
    expect([30_000, 32_000, 36_000, 44_000, 52_000].map((t) => p.next(false, t))).toEqual([
      2000, 4000, 8000, 8000, 8000,
    ]);
  });

  it("returns to the active pace on a change or on activity", () => {
    const p = new ScanPacer(pace, 0);
    for (let t = 30_000; t < 60_000; t += 5000) p.next(false, t);
    expect(p.next(true, 60_000)).toBe(1000);
    expect(p.next(false, 61_000)).toBe(1000);
    for (let t = 100_000; t < 130_000; t += 5000) p.next(false, t);
    p.activity(130_000);
    expect(p.next(false, 131_000)).toBe(1000);
  });
});
