import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { Sandbox, TimeoutError } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

const PREFIX = "wfd";

/**
 * Stock `e2b` SDK behaviours beyond the basics (tests/e2e/e2b-sdk.test.ts): file metadata
 * through rename and overwrite, metric ranges, and a sandbox killed while a command streams.
 */
describe("stock e2b SDK fidelity", () => {
  let stack: Stack;
  let sbx: Sandbox;
  let restoreE2bEnv = () => {};

  beforeAll(async () => {
    stack = await startStack({ agents: [{ netNamePrefix: PREFIX, firstSlot: 3700, maxSlots: 4 }] });
    restoreE2bEnv = pointE2bSdkAt(stack.url, e2bFormOfApiKey(stack.apiKey));
    sbx = await Sandbox.create({ timeoutMs: 600_000 });
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

  it("keeps file metadata in xattrs: getInfo, list, rename keeps it, an overwrite without it clears it", async () => {
    const written = await sbx.files.write("/home/user/meta.txt", "data", {
      metadata: { owner: "alice", stage: "raw" },
    });
    expect(written.metadata).toEqual({ owner: "alice", stage: "raw" });
    expect((await sbx.files.getInfo("/home/user/meta.txt")).metadata).toEqual({
      owner: "alice",
      stage: "raw",
    });
    const listed = await sbx.files.list("/home/user");
    expect(listed.find((e) => e.name === "meta.txt")?.metadata).toEqual({ owner: "alice", stage: "raw" });
    expect(listed.filter((e) => e.name !== "meta.txt").every((e) => e.metadata === undefined)).toBe(true);
    // They really are extended attributes on the file in the guest.
    const attrs = await sbx.commands.run(
      `perl -e 'my $b = "\\0" x 4096; my $n = syscall(194, $ARGV[0], $b, 4096); print join(" ", sort split(/\\0/, substr($b, 0, $n)))' /home/user/meta.txt`,
    );
    expect(attrs.stdout).toBe("user.e2b.owner user.e2b.stage");

    const moved = await sbx.files.rename("/home/user/meta.txt", "/home/user/moved/meta.txt");
    expect(moved.metadata).toEqual({ owner: "alice", stage: "raw" });
    expect((await sbx.files.getInfo("/home/user/moved/meta.txt")).metadata).toEqual({
      owner: "alice",
      stage: "raw",
    });

    await sbx.files.write("/home/user/moved/meta.txt", "new data");
    expect((await sbx.files.getInfo("/home/user/moved/meta.txt")).metadata).toBeUndefined();
    expect(await sbx.files.read("/home/user/moved/meta.txt")).toBe("new data");
  }, 120_000);

  it("answers getMetrics({ start, end }) with the samples inside the range only, as a series", async () => {
    const first = await sbx.getMetrics();
    expect(first.length).toBeGreaterThanOrEqual(1);
    // The metrics sampler keeps sampling every running sandbox (every second in the test stack).
    await new Promise((r) => setTimeout(r, 3500));
    const all = await sbx.getMetrics();
    expect(all.length).toBeGreaterThanOrEqual(3);
    const times = all.map((m) => m.timestamp.getTime());
    expect([...times].sort((a, b) => a - b)).toEqual(times);

    const start = new Date((times[1] ?? 0) - 500);
    const end = new Date((times.at(-2) ?? 0) + 500);
    const ranged = await sbx.getMetrics({ start, end });
    expect(ranged.length).toBeGreaterThanOrEqual(1);
    for (const m of ranged) {
      expect(Math.floor(m.timestamp.getTime() / 1000)).toBeGreaterThanOrEqual(
        Math.round(start.getTime() / 1000),
      );
      expect(Math.floor(m.timestamp.getTime() / 1000)).toBeLessThanOrEqual(Math.round(end.getTime() / 1000));
    }
    // The first sample is before the range: it is not there.
    expect(ranged.map((m) => m.timestamp.getTime())).not.toContain(times[0]);
    // A range before the sandbox existed, or in the future, has no points.
    expect(await sbx.getMetrics({ start: new Date(0), end: new Date(1000_000) })).toEqual([]);
    const future = Date.now() + 3600_000;
    expect(await sbx.getMetrics({ start: new Date(future), end: new Date(future + 60_000) })).toEqual([]);
  }, 120_000);

  it("ends a command streaming in a sandbox another client kills with a TimeoutError saying so", async () => {
    const victim = await Sandbox.create({ timeoutMs: 300_000 });
    let started = false;
    const running = victim.commands.run("echo started; sleep 60", {
      timeoutMs: 120_000,
      onStdout: () => {
        started = true;
      },
    });
    const failure = running.then(
      () => undefined,
      (err: unknown) => err,
    );
    await expect.poll(() => started, { timeout: 60_000 }).toBe(true);
    const t0 = Date.now();
    expect(await Sandbox.kill(victim.sandboxId)).toBe(true);
    const err = await failure;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/sandbox \w+ was killed/);
    expect((err as Error).message).toMatch(
      /killed or reached its end of life while the request was in flight/,
    );
    expect(Date.now() - t0).toBeLessThan(15_000);
  }, 180_000);
});
