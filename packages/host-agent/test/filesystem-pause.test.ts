import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { codeOf, type Harness, harnessForEachTest, slotAddress } from "./sandbox-harness.js";

let h: Harness;
const _harness = harnessForEachTest((next) => {
  h = next;
});

/** Files of memory generations on disk. */
function memoryFiles(): string[] {
  return readdirSync(join(h.dir, "memory"), { recursive: true }).map(String);
}

describe("SandboxManager pause without memory", () => {
  it("syncs the guest, stops the VM cleanly, frees slot and RAM and keeps only the disk; resume cold-boots over it", async () => {
    await h.manager.create({ sandboxId: "sbx-f", image: "base", envdAccessToken: "tok-f" });
    const first = h.driver.liveOf("sbx-f");
    const slot = h.manager.get("sbx-f").slot ?? -1;

    const paused = await h.manager.pause("sbx-f", { keepMemory: false });
    expect(paused).toMatchObject({ bytesWritten: 0, generation: 0 });
    expect(h.envd.commands).toEqual([{ address: slotAddress(slot), command: "sync" }]);
    // Stopped through the VMM's clean quit (the fake's stop exits 0), not killed.
    expect(await first?.exited).toEqual({ code: 0, signal: null, expected: true });
    expect(paused.record).toMatchObject({ state: "paused", pausedWithoutMemory: true, slot: undefined });
    expect(paused.record.memorySnapshot).toBeUndefined();
    expect(h.recordOnDisk("sbx-f")).toMatchObject({ state: "paused", pausedWithoutMemory: true });
    expect(memoryFiles()).toEqual([]);
    expect([...h.slots.leases()]).toEqual([]);
    expect([...h.network.live]).toEqual([]);
    // vCPUs and RAM are free; the disk it keeps still counts.
    expect(h.manager.allocated()).toMatchObject({ vcpus: 0, memoryMiB: 0, diskMiB: 8 });
    expect(existsSync(h.disks.overlayPath("sbx-f"))).toBe(true);
    expect(await codeOf(h.manager.pause("sbx-f", { keepMemory: false }))).toBe("conflict");

    const inits = h.envd.inits.length;
    const resumed = await h.manager.resume("sbx-f", 120);
    expect(resumed).toMatchObject({ state: "running", timeoutSec: 120, pausedAt: undefined });
    expect(resumed.pausedWithoutMemory).toBeUndefined();
    const second = h.driver.liveOf("sbx-f");
    expect(second?.restoredFrom).toBeUndefined();
    expect(second?.spec.rootDiskPath).toBe(h.disks.overlayPath("sbx-f"));
    expect(second?.spec.kernelPath).toBe(first?.spec.kernelPath);
    // A booted guest gets its settings through /init, without restore entropy.
    const init = h.envd.inits.at(-1);
    expect(h.envd.inits.length).toBe(inits + 1);
    expect(init?.token).toBe("tok-f");
    expect(init?.body.entropy).toBeUndefined();
    expect(h.recordOnDisk("sbx-f")?.pausedWithoutMemory).toBeUndefined();

    // The next pause with memory is a full generation: the booted VM has no parent snapshot.
    const again = await h.manager.pause("sbx-f");
    expect(again.generation).toBe(0);
    expect((await h.manager.resume("sbx-f")).state).toBe("running");
    expect(h.driver.liveOf("sbx-f")?.restoredFrom).toBeDefined();
  });

  it("a sandbox paused with memory resumes by reboot when asked, letting its memory snapshot go", async () => {
    await h.manager.create({ sandboxId: "sbx-r", image: "base" });
    await h.manager.pause("sbx-r");
    expect(memoryFiles().length).toBeGreaterThan(0);

    const resumed = await h.manager.resume("sbx-r", undefined, { reboot: true });
    expect(resumed.state).toBe("running");
    expect(resumed.memorySnapshot).toBeUndefined();
    expect(h.driver.liveOf("sbx-r")?.restoredFrom).toBeUndefined();
    expect(memoryFiles()).toEqual([]);
  });

  it("a pause without memory lets go of the memory snapshot an earlier pause wrote", async () => {
    await h.manager.create({ sandboxId: "sbx-m", image: "base" });
    await h.manager.pause("sbx-m");
    await h.manager.resume("sbx-m");
    expect(memoryFiles().length).toBeGreaterThan(0);
    await h.manager.pause("sbx-m", { keepMemory: false });
    expect(memoryFiles()).toEqual([]);
  });

  it("a failed guest sync does not stop the pause", async () => {
    await h.manager.create({ sandboxId: "sbx-s", image: "base" });
    await h.envd.close();
    const paused = await h.manager.pause("sbx-s", { keepMemory: false });
    expect(paused.record).toMatchObject({ state: "paused", pausedWithoutMemory: true });
    expect(h.driver.live()).toEqual([]);
  });

  it("the inactivity timeout action pause-filesystem pauses without memory", async () => {
    await h.manager.create({
      sandboxId: "sbx-t",
      image: "base",
      timeoutSec: 1,
      timeoutAction: "pause-filesystem",
    });
    await expect.poll(() => h.manager.stateOf("sbx-t"), { timeout: 5000 }).toBe("paused");
    await h.manager.settled("sbx-t");
    expect(h.manager.get("sbx-t").pausedWithoutMemory).toBe(true);
    expect(h.envd.commands.map((c) => c.command)).toEqual(["sync"]);
    expect(memoryFiles()).toEqual([]);
    expect(h.driver.live()).toEqual([]);
  });

  it("a named snapshot of a sandbox paused without memory is refused", async () => {
    await h.manager.create({ sandboxId: "sbx-n", image: "base" });
    await h.manager.pause("sbx-n", { keepMemory: false });
    expect(await codeOf(h.manager.snapshots.create("sbx-n", "snap-n", { leavePaused: true }))).toBe(
      "failed_precondition",
    );
    expect(h.manager.get("sbx-n")).toMatchObject({ state: "paused", pausedWithoutMemory: true });
  });

  it("survives an agent restart: the record is kept and the sandbox resumes by booting", async () => {
    const old = h.manager;
    await old.create({ sandboxId: "sbx-a", image: "base" });
    await old.pause("sbx-a", { keepMemory: false });
    await old.close({ destroyAll: false });

    const manager = await h.restart();
    const { adopted } = await manager.recover();
    expect(adopted).toEqual(["sbx-a"]);
    expect(manager.get("sbx-a")).toMatchObject({ state: "paused", pausedWithoutMemory: true });
    expect((await manager.resume("sbx-a")).state).toBe("running");
    expect(h.driver.liveOf("sbx-a")?.restoredFrom).toBeUndefined();
  });
});
