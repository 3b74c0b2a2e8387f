import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SandboxState } from "@wrenn/proto";
import { afterAll, describe, expect, it } from "vitest";
import { exec, spawnAgentProcess, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

describe("host agent: restart recovery", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "wrenn-agent-restart-"));
  const token = randomBytes(24).toString("hex");

  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("re-adopts a running VM after a crash and cleans up a create the crash interrupted", async () => {
    // Cold boots, so the crash below lands while the interrupted create's VM boots.
    const first = await spawnAgentProcess(dataDir, token, { WRENN_IMAGE_SNAPSHOTS: "0" });
    const { client } = first;
    const { sandbox } = await client.createSandbox({ image: "base", envdAccessToken: first.envdAccessToken });
    const keptId = sandbox?.sandboxId ?? "";
    expect((await exec(first, keptId, "echo before > /tmp/mark; echo ok")).stdout).toBe("ok\n");

    // Start a second create and crash the agent while the VM boots.
    const pending = client
      .createSandbox({ image: "base", sandboxId: "interrupted-create" })
      .catch(() => null);
    await new Promise((r) => setTimeout(r, 1500));
    await first.crash();
    await pending;

    const second = await startAgent({}, { dataDir, token });
    try {
      const { sandboxes } = await second.client.listSandboxes({});
      expect(sandboxes.map((s) => [s.sandboxId, s.state])).toEqual([[keptId, SandboxState.RUNNING]]);
      expect((await exec(second, keptId, "cat /tmp/mark")).stdout).toBe("before\n");
      const leftovers = findHostLeftovers(dataDir);
      expect(leftovers.qemuProcesses).toHaveLength(1);
      expect(leftovers.namespaces).toHaveLength(1);
      expect(leftovers.sandboxDirs).toEqual([keptId]);
    } finally {
      await second.close({ destroySandboxes: true, keepDataDir: true });
    }
    expect(findHostLeftovers(dataDir)).toEqual(NO_LEFTOVERS);
  }, 300_000);

  it("cleans away an image snapshot build a crash interrupted, and builds it again", async () => {
    const buildDir = mkdtempSync(join(tmpdir(), "wrenn-agent-restart-build-"));
    // A cache of this test's own: the crash must land in a build (the shared cache has the entry),
    // and the crashed agent's build claim must not hold up the next agent.
    const cacheDir = join(buildDir, "image-snapshot-cache");
    try {
      const first = await spawnAgentProcess(buildDir, token, { WRENN_IMAGE_SNAPSHOT_CACHE: cacheDir });
      // The agent builds the base image snapshot from start (a cold boot of several seconds here).
      await new Promise((r) => setTimeout(r, 1500));
      await first.crash();

      const second = await startAgent({ imageSnapshotCacheDir: cacheDir }, { dataDir: buildDir, token });
      try {
        expect(await second.agent.defaultImageSnapshot.ready).toBeDefined();
        expect((await second.client.listSandboxes({})).sandboxes).toEqual([]);
        const leftovers = findHostLeftovers(buildDir);
        expect(leftovers.qemuProcesses).toEqual([]);
        expect(leftovers.sandboxDirs).toEqual([]);
        const { sandbox } = await second.client.createSandbox({ image: "base" });
        expect((await exec(second, sandbox?.sandboxId ?? "", "echo ok")).stdout).toBe("ok\n");
      } finally {
        await second.close({ destroySandboxes: true, keepDataDir: true });
      }
      expect(findHostLeftovers(buildDir)).toEqual(NO_LEFTOVERS);
    } finally {
      rmSync(buildDir, { recursive: true, force: true });
    }
  }, 300_000);
});
