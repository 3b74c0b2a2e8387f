import { existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { describe, expect, it } from "vitest";
import { codeOf, type Harness, harnessForEachTest, slotAddress } from "./sandbox-harness.js";

let h: Harness;
const harness = harnessForEachTest((next) => {
  h = next;
});

/** Nothing of any sandbox is left: no record, no slot lease, no network, no VM, no disk layer. */
function expectNothingLeft(): void {
  expect(h.manager.list()).toEqual([]);
  expect(readdirSync(h.sandboxesDir)).toEqual([]);
  expect([...h.slots.leases()]).toEqual([]);
  expect([...h.network.live]).toEqual([]);
  expect(h.driver.live()).toEqual([]);
}

describe("SandboxManager create", () => {
  it("boots a VM in a slot with a disk layer, inits envd, records it running; destroy frees it all", async () => {
    const record = await h.manager.create({
      sandboxId: "sbx-one",
      image: "base",
      envVars: { A: "1" },
      envdAccessToken: "tok-one",
    });
    expect(record).toMatchObject({ id: "sbx-one", state: "running", slot: 1, hostIp: slotAddress(1) });
    expect(h.recordOnDisk("sbx-one")).toMatchObject({ state: "running", slot: 1, vmmPid: record.vmmPid });
    expect([...h.slots.leases()]).toEqual([[1, "sbx-one"]]);
    expect([...h.network.live]).toEqual([1]);
    const vm = h.driver.liveOf("sbx-one");
    expect(vm?.spec).toMatchObject({ vcpus: 1, memoryMiB: 256, network: { netnsName: "ut-ns-1" } });
    expect(vm?.restoredFrom).toBeUndefined();
    expect(existsSync(vm?.spec.rootDiskPath ?? "")).toBe(true);
    expect(h.envd.inits).toEqual([
      expect.objectContaining({
        address: slotAddress(1),
        token: "tok-one",
        body: expect.objectContaining({ envVars: { A: "1" }, accessToken: "tok-one" }),
      }),
    ]);
    expect(h.envd.inits[0]?.body.entropy).toBeUndefined();
    expect(h.manager.envdFor("sbx-one")).toBeDefined();
    expect(h.manager.vmmPid("sbx-one")).toBe(vm?.pid);
    expect(h.manager.trafficAddress("sbx-one")).toBe(slotAddress(1));
    expect(h.manager.allocated()).toEqual({ vcpus: 1, memoryMiB: 256, diskMiB: 8 });

    await h.manager.destroy("sbx-one");
    expectNothingLeft();
    expect(vm?.alive).toBe(false);
  });

  // Each step's failure, made to happen in the real stores or the fakes; everything made before it is undone.
  const failures: Array<[string, string, () => void]> = [
    ["record", "internal", () => (h.records.failSave = () => true)],
    ["network", "internal", () => (h.network.failCreate = new WrennError("internal", "ip link failed"))],
    ["disk", "internal", () => (h.disks.failCreate = new WrennError("internal", "qemu-img failed"))],
    ["vm", "internal", () => (h.driver.failBoot = new WrennError("internal", "qemu would not start"))],
    [
      "envd-ready (VMM dies during boot)",
      "internal",
      () => {
        h.envd.healthy = false;
        h.driver.dieAfterStart = true;
      },
    ],
    ["envd-init", "internal", () => (h.envd.initStatus = 500)],
    ["running (last record save)", "internal", () => (h.records.failSave = (r) => r.state === "running")],
  ];
  for (const [step, code, breakIt] of failures) {
    it(`unwinds everything when the ${step} step fails`, async () => {
      breakIt();
      expect(await codeOf(h.manager.create({ sandboxId: "sbx-bad", image: "base" }))).toBe(code);
      expectNothingLeft();
      expect(h.driver.vms.every((vm) => !vm.alive)).toBe(true);
      expect(h.manager.stateOf("sbx-bad")).toBeUndefined();
    });
  }

  it("unwinds when envd never becomes healthy (deadline)", async () => {
    await harness.renew({ envdReadyTimeoutMs: 300 });
    h.envd.healthy = false;
    expect(await codeOf(h.manager.create({ sandboxId: "sbx-slow", image: "base" }))).toBe(
      "deadline_exceeded",
    );
    expectNothingLeft();
  });

  it("unwinds when no slot is free, and the slot leased before stays with its owner", async () => {
    for (let i = 0; i < 4; i++) await h.slots.acquire(`other-${i}`);
    expect(await codeOf(h.manager.create({ sandboxId: "sbx-noslot", image: "base" }))).toBe("no_capacity");
    expect(h.manager.list()).toEqual([]);
    expect(readdirSync(h.sandboxesDir)).toEqual([]);
    expect(h.slots.slotsOf("sbx-noslot")).toEqual([]);
    expect(h.driver.vms).toEqual([]);
    for (let slot = 1; slot <= 4; slot++) await h.slots.release(slot);
  });

  it("admission refuses with no_capacity past the host's vCPU or memory budget, leaving nothing", async () => {
    await h.manager.create({ sandboxId: "sbx-big", image: "base", resources: { vcpus: 3 } });
    expect(
      await codeOf(h.manager.create({ sandboxId: "sbx-cpu", image: "base", resources: { vcpus: 2 } })),
    ).toBe("no_capacity");
    expect(
      await codeOf(h.manager.create({ sandboxId: "sbx-mem", image: "base", resources: { memoryMiB: 2048 } })),
    ).toBe("no_capacity");
    expect(h.manager.list().map((r) => r.id)).toEqual(["sbx-big"]);
    expect(readdirSync(h.sandboxesDir)).toEqual(["sbx-big"]);
    expect(h.driver.vms).toHaveLength(1);
    // A paused sandbox holds no vCPUs; resuming it is admitted like a create.
    await h.manager.pause("sbx-big");
    await h.manager.create({ sandboxId: "sbx-fill", image: "base", resources: { vcpus: 2 } });
    expect(await codeOf(h.manager.resume("sbx-big"))).toBe("no_capacity");
    expect(h.manager.get("sbx-big").state).toBe("paused");
    expect(h.slots.slotsOf("sbx-big")).toEqual([]);
  });
});

describe("SandboxManager pause and resume", () => {
  it("pause frees VM and slot and keeps the disk; resume restores through the same start sequence", async () => {
    await h.manager.create({ sandboxId: "sbx-p", image: "base", envdAccessToken: "tok-p" });
    const first = h.driver.liveOf("sbx-p");
    const paused = await h.manager.pause("sbx-p");
    expect(paused.generation).toBe(0);
    expect(paused.record).toMatchObject({ state: "paused", slot: undefined, vmmPid: undefined });
    expect(h.recordOnDisk("sbx-p")).toMatchObject({
      state: "paused",
      memorySnapshot: paused.record.memorySnapshot,
    });
    expect(first?.alive).toBe(false);
    expect([...h.slots.leases()]).toEqual([]);
    expect([...h.network.live]).toEqual([]);
    expect(existsSync(h.disks.overlayPath("sbx-p"))).toBe(true);
    expect(await codeOf(h.manager.pause("sbx-p"))).toBe("conflict");

    const resumed = await h.manager.resume("sbx-p", 600);
    expect(resumed).toMatchObject({ state: "running", slot: 1, timeoutSec: 600, pausedAt: undefined });
    const second = h.driver.liveOf("sbx-p");
    expect(second?.restoredFrom).toBeDefined();
    expect(second?.state).toBe("running");
    expect(second?.spec.rootDiskPath).toBe(h.disks.overlayPath("sbx-p"));
    const init = h.envd.inits.at(-1);
    expect(init?.token).toBe("tok-p");
    expect(init?.body.entropy).toBeDefined();
    expect(h.recordOnDisk("sbx-p")).toMatchObject({ state: "running", vmmPid: second?.pid });

    // A second pause writes a diff generation on top of the first.
    expect((await h.manager.pause("sbx-p")).generation).toBe(1);
  });

  const resumeFailures: Array<[string, () => void]> = [
    ["network", () => (h.network.failCreate = new WrennError("internal", "ip link failed"))],
    ["vm", () => (h.driver.failRestore = new WrennError("internal", "qemu would not start"))],
    ["vcpus", () => (h.driver.failResumeVcpus = new WrennError("internal", "cont failed"))],
    ["envd-init", () => (h.envd.initStatus = 500)],
    ["running", () => (h.records.failSave = (r) => r.state === "running")],
  ];
  for (const [step, breakIt] of resumeFailures) {
    it(`a resume failing at the ${step} step leaves the sandbox paused as it was, and it resumes later`, async () => {
      await h.manager.create({ sandboxId: "sbx-r", image: "base" });
      await h.manager.pause("sbx-r");
      const before = structuredClone(h.recordOnDisk("sbx-r"));
      breakIt();
      expect(await codeOf(h.manager.resume("sbx-r"))).toBe("internal");
      expect(h.manager.get("sbx-r")).toMatchObject({ state: "paused", slot: undefined, vmmPid: undefined });
      expect(h.recordOnDisk("sbx-r")).toEqual(before);
      expect([...h.slots.leases()]).toEqual([]);
      expect([...h.network.live]).toEqual([]);
      expect(h.driver.live()).toEqual([]);

      h.network.failCreate = undefined;
      h.driver.failRestore = undefined;
      h.driver.failResumeVcpus = undefined;
      h.envd.initStatus = 204;
      h.records.failSave = undefined;
      expect((await h.manager.resume("sbx-r")).state).toBe("running");
    });
  }

  it("a pause whose record cannot be saved (a full disk) keeps the VM running and drops the generation", async () => {
    await h.manager.create({ sandboxId: "sbx-f", image: "base", envdAccessToken: "tok-f" });
    const vm = h.driver.liveOf("sbx-f");
    const memoryBefore = readdirSync(join(h.dir, "memory")).sort();
    h.records.failSave = (r) => r.state === "paused";
    expect(await codeOf(h.manager.pause("sbx-f"))).toBe("internal");
    // The vCPUs run again and envd got its /init back; nothing of the generation is left.
    expect(vm?.alive).toBe(true);
    expect(vm?.state).toBe("running");
    expect(h.envd.inits.at(-1)?.token).toBe("tok-f");
    expect(h.manager.get("sbx-f")).toMatchObject({
      state: "running",
      memorySnapshot: undefined,
      pausedAt: undefined,
    });
    expect(h.recordOnDisk("sbx-f")).toMatchObject({ state: "running" });
    expect(readdirSync(join(h.dir, "memory")).sort()).toEqual(memoryBefore);

    h.records.failSave = undefined;
    expect((await h.manager.pause("sbx-f")).record.state).toBe("paused");
    expect((await h.manager.resume("sbx-f")).state).toBe("running");
  });

  it("a snapshot failing its checks marks the sandbox error and leaves nothing running", async () => {
    await h.manager.create({ sandboxId: "sbx-c", image: "base" });
    const { record } = await h.manager.pause("sbx-c");
    rmSync(join(h.dir, "memory", `${record.memorySnapshot}.hdr`));
    expect(await codeOf(h.manager.resume("sbx-c"))).toBe("snapshot_corrupt");
    expect(h.manager.get("sbx-c").state).toBe("error");
    expect(h.recordOnDisk("sbx-c")?.state).toBe("error");
    expect([...h.slots.leases()]).toEqual([]);
    expect(h.driver.live()).toEqual([]);
  });

  it("fork clones a running sandbox through the same start sequence (snapshot token first, then its own)", async () => {
    await h.manager.create({ sandboxId: "sbx-src", image: "base", envdAccessToken: "tok-src" });
    const forks = await h.manager.snapshots.fork("sbx-src", 2, { role: "fork" }, ["tok-f1", "tok-f2"]);
    expect(forks.map((f) => f.state)).toEqual(["running", "running"]);
    expect(h.manager.get("sbx-src").state).toBe("running");
    for (const [i, fork] of forks.entries()) {
      const vm = h.driver.liveOf(fork.id);
      expect(vm?.restoredFrom).toBeDefined();
      expect(fork.envdAccessToken).toBe(`tok-f${i + 1}`);
      const init = h.envd.inits.find((c) => c.address === fork.hostIp);
      expect(init).toMatchObject({ token: "tok-src", body: { accessToken: `tok-f${i + 1}` } });
    }
    expect(new Set(h.manager.list().map((r) => r.slot)).size).toBe(3);
  });
});

describe("SandboxManager inactivity timeout", () => {
  it("destroys a sandbox whose timeout action is destroy", async () => {
    await h.manager.create({ sandboxId: "sbx-t", image: "base", timeoutSec: 1, timeoutAction: "destroy" });
    await expect.poll(() => h.manager.stateOf("sbx-t"), { timeout: 5000 }).toBeUndefined();
    expectNothingLeft();
  });

  it("pauses a sandbox whose timeout action is pause", async () => {
    await h.manager.create({ sandboxId: "sbx-t", image: "base", timeoutSec: 1 });
    await expect.poll(() => h.manager.stateOf("sbx-t"), { timeout: 5000 }).toBe("paused");
    // The state turns paused once the snapshot is saved; the VM and slot go after, under the lock.
    await h.manager.settled("sbx-t");
    expect(h.driver.live()).toEqual([]);
    expect([...h.slots.leases()]).toEqual([]);
  });

  it("ping re-arms the timer (and can change the timeout)", async () => {
    await h.manager.create({ sandboxId: "sbx-t", image: "base", timeoutSec: 1, timeoutAction: "destroy" });
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 500));
      h.manager.ping("sbx-t");
    }
    expect(h.manager.stateOf("sbx-t")).toBe("running");
    h.manager.ping("sbx-t", 2);
    await new Promise((r) => setTimeout(r, 1300));
    expect(h.manager.stateOf("sbx-t")).toBe("running");
    await expect.poll(() => h.manager.stateOf("sbx-t"), { timeout: 5000 }).toBeUndefined();
  });
});

describe("SandboxManager recovery after an agent restart", () => {
  it("adopts live VMs, keeps paused sandboxes, marks dead ones error and removes half-created ones", async () => {
    const old = h.manager;
    await old.create({ sandboxId: "sbx-live", image: "base" });
    await old.create({ sandboxId: "sbx-dead", image: "base" });
    await old.create({ sandboxId: "sbx-paused", image: "base" });
    await old.pause("sbx-paused");
    // A create the old agent never finished: pending, with a slot and a network.
    const pendingSlot = await h.slots.acquire("sbx-half");
    await h.network.create(pendingSlot);
    await h.records.save({
      ...old.get("sbx-live"),
      id: "sbx-half",
      state: "pending",
      slot: pendingSlot,
      hostIp: slotAddress(pendingSlot),
      vmmPid: undefined,
      runDir: join(h.records.dirFor("sbx-half"), "run"),
    });
    await old.close({ destroyAll: false });
    h.driver.liveOf("sbx-dead")?.die();

    const manager = await h.restart();
    const { adopted, cleaned } = await manager.recover();
    expect(adopted.sort()).toEqual(["sbx-live", "sbx-paused"]);
    expect(cleaned).toEqual(["sbx-half"]);
    expect(manager.stateOf("sbx-half")).toBeUndefined();
    expect(existsSync(h.records.dirFor("sbx-half"))).toBe(false);

    expect(manager.get("sbx-dead")).toMatchObject({ state: "error", slot: undefined });
    expect(h.recordOnDisk("sbx-dead")?.state).toBe("error");
    expect(existsSync(h.disks.overlayPath("sbx-dead"))).toBe(false);

    const live = manager.get("sbx-live");
    expect(manager.vmmPid("sbx-live")).toBe(h.driver.liveOf("sbx-live")?.pid);
    expect(manager.envdFor("sbx-live")).toBeDefined();
    expect([...manager.slotsInUse()]).toEqual([live.slot]);
    expect([...h.network.live]).toEqual([live.slot]);
    expect(manager.get("sbx-paused").state).toBe("paused");

    // The adopted sandbox is managed as before: its VM's death is noticed, destroy frees it.
    expect((await manager.resume("sbx-paused")).state).toBe("running");
    await manager.destroy("sbx-live");
    expect(h.driver.liveOf("sbx-live")).toBeUndefined();
  });

  it("an adopted VM left with its vCPUs stopped (a crash mid-pause) runs again; one in no state to run goes", async () => {
    await h.manager.create({ sandboxId: "sbx-frozen", image: "base", envdAccessToken: "tok-z" });
    await h.manager.create({ sandboxId: "sbx-limbo", image: "base" });
    const frozen = h.driver.liveOf("sbx-frozen");
    const limbo = h.driver.liveOf("sbx-limbo");
    await frozen?.pauseVcpus();
    if (limbo) limbo.state = "other";
    await h.manager.close({ destroyAll: false });
    const inits = h.envd.inits.length;

    const manager = await h.restart();
    const { adopted } = await manager.recover();
    expect(adopted).toEqual(["sbx-frozen"]);
    expect(frozen?.state).toBe("running");
    expect(h.envd.inits.slice(inits).map((i) => i.token)).toEqual(["tok-z"]);
    expect(manager.get("sbx-frozen").state).toBe("running");
    expect(limbo?.alive).toBe(false);
    expect(manager.get("sbx-limbo")).toMatchObject({ state: "error", slot: undefined });
  });

  it("a VM that dies while the agent runs marks its sandbox error and frees its slot", async () => {
    await h.manager.create({ sandboxId: "sbx-crash", image: "base" });
    h.driver.liveOf("sbx-crash")?.die();
    await expect.poll(() => h.manager.stateOf("sbx-crash"), { timeout: 5000 }).toBe("error");
    await h.manager.settled("sbx-crash");
    expect([...h.slots.leases()]).toEqual([]);
    expect([...h.network.live]).toEqual([]);
    expect(h.recordOnDisk("sbx-crash")?.error).toMatch(/VMM exited unexpectedly/);
  });
});
