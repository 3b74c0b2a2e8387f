import { describe, expect, it } from "vitest";
import { runLimited } from "../src/run-limited.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("runLimited", () => {
  it("runs every index once, in order, never more than the limit at once", async () => {
    const started: number[] = [];
    let inFlight = 0;
    let peak = 0;
    await runLimited(10, 3, async (i) => {
      started.push(i);
      inFlight++;
      peak = Math.max(peak, inFlight);
      await tick(5 + (i % 3) * 3);
      inFlight--;
    });
    expect(started).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(peak).toBe(3);
  });

  it("after a failure starts nothing new, lets the ones in flight finish, then throws the first error", async () => {
    const finished: number[] = [];
    const started: number[] = [];
    const err = await runLimited(10, 3, async (i) => {
      started.push(i);
      if (i === 1) throw new Error("task 1 failed");
      await tick(20);
      finished.push(i);
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("task 1 failed");
    // 0 and 2 were in flight with 1; 1's worker stopped, the others stop after their task.
    expect(started).toEqual([0, 1, 2]);
    expect(finished.sort()).toEqual([0, 2]);
  });

  it("does nothing for zero tasks", async () => {
    let calls = 0;
    await runLimited(0, 4, async () => {
      calls++;
    });
    expect(calls).toBe(0);
  });
});
