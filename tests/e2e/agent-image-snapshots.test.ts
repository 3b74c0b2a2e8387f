import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxState } from "@wrenn/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

const ENVD_PORT = 49983;

/** Real VMs: every create from `base` restores the image's snapshot, and each is its own machine. */
describe("image snapshots: creates from an image restore", () => {
  let fx: AgentFixture;
  const sandboxes: { id: string; hostIp: string; token: string }[] = [];
  // A cache of this file's own, so its agent cold-boots (the suite's shared one has the entry).
  const cacheDir = mkdtempSync(join(tmpdir(), "wrenn-image-cache-test-"));

  beforeAll(async () => {
    fx = await startAgent(
      { netNamePrefix: "wis", firstSlot: 1500, maxSlots: 10, imageSnapshotCacheDir: cacheDir },
      undefined,
      { waitForImageSnapshot: false },
    );
  }, 60_000);

  afterAll(async () => {
    const dir = fx?.dataDir ?? "";
    await fx?.close();
    expect(findHostLeftovers(dir, "wis")).toEqual(NO_LEFTOVERS);
    rmSync(cacheDir, { recursive: true, force: true });
  }, 120_000);

  /** The image snapshot's record, as the agent keeps it. */
  function imageSnapshot(agent: AgentFixture = fx): {
    envdAccessToken: string;
    memorySnapshot: string;
    imageKey: string;
    sourceSandboxId: string;
  } {
    const dir = join(agent.dataDir, "templates");
    const records = readdirSync(dir).map((id) =>
      JSON.parse(readFileSync(join(dir, id, "template.json"), "utf8")),
    );
    const found = records.filter((r) => r.imageKey && !r.deleted);
    expect(found).toHaveLength(1);
    return found[0];
  }

  async function envsStatus(hostIp: string, token: string): Promise<number> {
    const res = await fetch(`http://${hostIp}:${ENVD_PORT}/envs`, {
      headers: { "x-access-token": token },
      signal: AbortSignal.timeout(10_000),
    });
    await res.arrayBuffer();
    return res.status;
  }

  it("a create during the first snapshot waits for it and succeeds", async () => {
    expect(fx.agent.defaultImageSnapshot.building).toBe(true);
    const created = await Promise.all(
      ["a", "b"].map((who) =>
        fx.client.createSandbox({
          image: "base",
          envVars: { WHO: who },
          envdAccessToken: `token-of-${who}-${"x".repeat(16)}`,
          metadata: { who },
        }),
      ),
    );
    for (const [i, c] of created.entries()) {
      expect(c.sandbox?.state).toBe(SandboxState.RUNNING);
      sandboxes.push({
        id: c.sandbox?.sandboxId ?? "",
        hostIp: c.sandbox?.hostIp ?? "",
        token: `token-of-${["a", "b"][i]}-${"x".repeat(16)}`,
      });
    }
    expect(await fx.agent.defaultImageSnapshot.ready).toMatchObject({
      ms: expect.any(Number),
      fromCache: false,
    });
    // Only the two sandboxes are listed: the build VM never was a sandbox.
    const { sandboxes: listed } = await fx.client.listSandboxes({});
    expect(listed.map((s) => s.sandboxId).sort()).toEqual(sandboxes.map((s) => s.id).sort());
  }, 400_000);

  it("restores each from the image snapshot, with its own env, entropy and envd token", async () => {
    const snapshot = imageSnapshot();
    expect(snapshot.imageKey).toMatch(/^base-.*-1c-512m-(tcg|kvm)-[0-9a-f]{8}$/);
    const randoms: string[] = [];
    for (const [i, s] of sandboxes.entries()) {
      const who = await exec(fx, s.id, "echo $WHO");
      expect(who.stdout.trim()).toBe(["a", "b"][i]);
      const r = await exec(fx, s.id, "head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'");
      expect(r.stdout).toMatch(/^[0-9a-f]{64}$/);
      randoms.push(r.stdout);
      // Its own token works; the snapshot's and the other sandbox's are refused.
      expect(await envsStatus(s.hostIp, s.token)).toBe(200);
      expect(await envsStatus(s.hostIp, snapshot.envdAccessToken)).toBe(401);
      const other = sandboxes[1 - i];
      expect(await envsStatus(s.hostIp, other?.token ?? "")).toBe(401);
    }
    expect(randoms[0]).not.toBe(randoms[1]);
    // Nothing of one sandbox is visible in the other.
    await exec(fx, sandboxes[0]?.id ?? "", "echo mine > /home/user/only-a");
    expect((await exec(fx, sandboxes[1]?.id ?? "", "ls /home/user/only-a")).exitCode).not.toBe(0);
  }, 120_000);

  it("a sandbox restored from the image snapshot pauses, resumes and snapshots", async () => {
    const id = sandboxes[0]?.id ?? "";
    await exec(fx, id, "echo kept > /home/user/kept");
    await fx.client.pauseSandbox({ sandboxId: id });
    const resumed = await fx.client.resumeSandbox({ sandboxId: id });
    expect(resumed.sandbox?.state).toBe(SandboxState.RUNNING);
    expect((await exec(fx, id, "cat /home/user/kept")).stdout.trim()).toBe("kept");

    await fx.client.createSnapshot({ sandboxId: id, name: "from-image-clone" });
    const clone = await fx.client.createSandbox({ image: "base", snapshot: "from-image-clone" });
    const cloneId = clone.sandbox?.sandboxId ?? "";
    expect((await exec(fx, cloneId, "cat /home/user/kept")).stdout.trim()).toBe("kept");
    const { snapshots } = await fx.client.listSnapshots({});
    expect(snapshots.map((s) => s.name)).toEqual(["from-image-clone"]);
    await fx.client.destroySandbox({ sandboxId: cloneId });
    await fx.client.deleteSnapshot({ name: "from-image-clone", force: true });
  }, 300_000);

  it("another agent on the host takes the snapshot from the host cache instead of cold-booting", async () => {
    const other = await startAgent(
      { netNamePrefix: "wisc", firstSlot: 1520, maxSlots: 4, imageSnapshotCacheDir: cacheDir },
      undefined,
      { waitForImageSnapshot: false },
    );
    try {
      expect(other.agent.defaultImageSnapshot.building).toBe(true);
      const { ms, fromCache } = (await other.agent.defaultImageSnapshot.ready) ?? { ms: -1 };
      expect(fromCache).toBe(true);
      const taken = imageSnapshot(other);
      expect(taken.sourceSandboxId).toMatch(/^cache:/);
      expect(taken).toMatchObject({
        imageKey: imageSnapshot().imageKey,
        memorySnapshot: imageSnapshot().memorySnapshot,
      });
      // Hard links, not a boot: well under the several seconds a cold boot takes here.
      expect(ms).toBeLessThan(3000);
      const token = `token-of-c-${"x".repeat(16)}`;
      const { sandbox } = await other.client.createSandbox({
        image: "base",
        envVars: { WHO: "c" },
        envdAccessToken: token,
      });
      const id = sandbox?.sandboxId ?? "";
      expect((await exec(other, id, "echo $WHO")).stdout.trim()).toBe("c");
      expect(await envsStatus(sandbox?.hostIp ?? "", token)).toBe(200);
      expect(await envsStatus(sandbox?.hostIp ?? "", taken.envdAccessToken)).toBe(401);
    } finally {
      const dir = other.dataDir;
      await other.close();
      expect(findHostLeftovers(dir, "wisc")).toEqual(NO_LEFTOVERS);
    }
  }, 120_000);
});
