import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { WrennError } from "@wrenn/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GUEST_MAC } from "../src/network/sandbox-network.js";
import type { VmHandle, VmmDriver, VmSpec } from "../src/vmm/vmm-driver.js";
import { createOverlay, findGuestImage, type TestGuestImage } from "./guest-image.js";

const run = promisify(execFile);

/** What a driver under test provides to the shared suite. */
export interface VmmContractContext {
  driver: VmmDriver;
  /** A second driver instance over the same host state, as after an agent restart. */
  restartedDriver(): Promise<VmmDriver>;
  /** Whether the host still has a resource group (cgroup) for this VM. */
  hostGroupExists(id: string): Promise<boolean>;
  /** Releases what create() made (cgroup parents and the like); asserts they are gone. */
  dispose(): Promise<void>;
}

export interface VmmContractTarget {
  name: string;
  /** When set, the whole suite is skipped and this is shown as the reason. */
  skipReason?: string | undefined;
  create(): Promise<VmmContractContext>;
  /** Files the driver may leave in runDir (the caller removes the directory). */
  runDirFiles: readonly string[];
}

export interface BootTimings {
  firstConsoleMs?: number;
  firstInitLineMs?: number;
  rootInitLineMs?: number;
  readyMs?: number;
}

/** Timings of the lifecycle test, for reports (printed as one JSON line). */
export const measured: Record<string, unknown> = {};

const image = await findGuestImage();

/**
 * Registers the VmmDriver contract tests for one driver. Every test cleans up after itself
 * and asserts that nothing is left: no VMM process, no host group, only known run files.
 */
export function registerVmmContract(target: VmmContractTarget): void {
  const skipReason = target.skipReason ?? image.skipReason;
  const title = `VmmDriver contract: ${target.name}${skipReason ? ` (skipped: ${skipReason})` : ""}`;

  describe.skipIf(skipReason !== undefined)(title, () => {
    let ctx: VmmContractContext;
    let root: string;
    let guest: TestGuestImage;
    const live = new Set<VmHandle>();

    beforeAll(async () => {
      if (!image.image) throw new Error("unreachable: suite is skipped without an image");
      guest = image.image;
      root = await mkdtemp(join(tmpdir(), "wrenn-vmm-test-"));
      await mkdir(join(root, "disks"));
      ctx = await target.create();
    });

    afterEach(async () => {
      for (const vm of live) await vm.kill().catch(() => {});
      live.clear();
    });

    afterAll(async () => {
      try {
        expect(await processesUsing(root)).toEqual([]);
      } finally {
        await ctx?.dispose();
        if (root) await rm(root, { recursive: true, force: true });
      }
    });

    let counter = 0;
    async function newSpec(overrides: Partial<VmSpec> = {}): Promise<VmSpec> {
      const id = `vt-${randomBytes(4).toString("hex")}-${counter++}`;
      const runDir = join(root, id);
      await mkdir(runDir);
      // One copy-on-write layer per VM, as in production (two QEMUs never share a writable disk).
      const rootDiskPath = join(root, "disks", `${id}.qcow2`);
      await createOverlay(guest, rootDiskPath);
      return {
        id,
        vcpus: 1,
        memoryMiB: 256,
        kernelPath: guest.kernelPath,
        initrdPath: guest.initrdPath,
        kernelArgs: `root=/dev/vda rw quiet wrenn.debug=1 ${guest.kernelArgs}`,
        rootDiskPath,
        runDir,
        ...overrides,
      };
    }

    async function boot(spec: VmSpec, driver = ctx.driver): Promise<VmHandle> {
      const vm = await driver.boot(spec);
      live.add(vm);
      return vm;
    }

    /** After a VM is gone: no process, no host group, run dir holds only known files; then removes it. */
    async function assertGone(spec: VmSpec, vm: VmHandle): Promise<void> {
      expect(await processAlive(vm.pid)).toBe(false);
      expect(await ctx.hostGroupExists(spec.id)).toBe(false);
      const files = await readdir(spec.runDir);
      expect(files.filter((f) => !target.runDirFiles.includes(f))).toEqual([]);
      await rm(spec.runDir, { recursive: true, force: true });
      live.delete(vm);
    }

    it("boots; the guest prints from init; pauses, resumes and stops cleanly", {
      timeout: 240_000,
    }, async () => {
      const spec = await newSpec({ memoryMiB: 512 });
      const started = Date.now();
      const vm = await boot(spec);
      expect(vm.pid).toBeGreaterThan(0);
      expect(vm.accel).toBe(ctx.driver.accel);
      const timings: BootTimings = {};
      await waitForConsole(vm.consolePath, 180_000, (text) => {
        const now = Date.now() - started;
        if (text.length > 0) timings.firstConsoleMs ??= now;
        if (text.includes("initramfs:")) timings.firstInitLineMs ??= now;
        if (text.includes("wrenn-init:")) timings.rootInitLineMs ??= now;
        if (text.includes(guest.readyLine)) timings.readyMs ??= now;
        return timings.readyMs !== undefined;
      });
      expect(timings.rootInitLineMs).toBeDefined();
      expect(await vm.runState()).toBe("running");
      // Idle a moment, then sample the VMM's memory (reported, not asserted: it depends on the accelerator).
      await sleep(5000);
      measured[target.name] = {
        ...timings,
        accel: vm.accel,
        memoryMiB: spec.memoryMiB,
        ...(await memoryOf(vm.pid)),
      };
      console.log(`[vmm-contract] ${target.name} ${JSON.stringify(measured[target.name])}`);

      await vm.pauseVcpus();
      expect(await vm.runState()).toBe("paused");
      await vm.resumeVcpus();
      expect(await vm.runState()).toBe("running");

      const exit = await vm.stop();
      expect(exit.expected).toBe(true);
      expect(exit.code).toBe(0);
      expect(await vm.exited).toEqual(exit);
      await expect(vm.pauseVcpus()).rejects.toBeInstanceOf(WrennError);
      await assertGone(spec, vm);
    });

    it("kill() stops the VMM at once and is idempotent", async () => {
      const spec = await newSpec();
      const vm = await boot(spec);
      const [first, second] = await Promise.all([vm.kill(), vm.kill()]);
      expect(first.expected).toBe(true);
      expect(first.signal).toBe("SIGKILL");
      expect(second).toEqual(first);
      expect(await vm.kill()).toEqual(first);
      expect(await vm.stop()).toEqual(first);
      await assertGone(spec, vm);
    });

    it("reports a VMM that dies on its own as an unexpected exit", async () => {
      const spec = await newSpec();
      const vm = await boot(spec);
      process.kill(vm.pid, "SIGKILL");
      const exit = await vm.exited;
      expect(exit.expected).toBe(false);
      expect(exit.signal).toBe("SIGKILL");
      await assertGone(spec, vm);
    });

    it("a restarted driver adopts a running VM and can stop it", async () => {
      const spec = await newSpec();
      const vm = await boot(spec);
      vm.detach(); // the old agent goes away without stopping its VMs
      const driver = await ctx.restartedDriver();

      // Wrong run dir or a dead pid: not ours.
      expect(await driver.adopt({ ...spec, runDir: join(root, "elsewhere") }, vm.pid)).toBeNull();
      expect(await driver.adopt(spec, 2 ** 22 + 7)).toBeNull();

      const adopted = await driver.adopt(spec, vm.pid);
      expect(adopted).not.toBeNull();
      if (!adopted) return;
      live.add(adopted);
      expect(adopted.pid).toBe(vm.pid);
      expect(adopted.accel).toBe(vm.accel);
      expect(await adopted.runState()).toBe("running");
      await adopted.pauseVcpus();
      expect(await adopted.runState()).toBe("paused");
      const exit = await adopted.stop();
      expect(exit.expected).toBe(true);
      await assertGone(spec, adopted);
      live.delete(vm);
    });

    it("a restarted driver notices when an adopted VM dies", async () => {
      const spec = await newSpec();
      const vm = await boot(spec);
      vm.detach();
      const adopted = await (await ctx.restartedDriver()).adopt(spec, vm.pid);
      expect(adopted).not.toBeNull();
      if (!adopted) return;
      live.add(adopted);
      process.kill(vm.pid, "SIGKILL");
      const exit = await adopted.exited;
      expect(exit.expected).toBe(false);
      await assertGone(spec, adopted);
      live.delete(vm);
    });

    it("a failed boot leaves nothing running", async () => {
      const spec = await newSpec({ kernelPath: join(root, "no-such-kernel") });
      const error = await ctx.driver.boot(spec).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(WrennError);
      expect(String((error as Error).message)).toMatch(/no-such-kernel|kernel/);
      expect(await processesUsing(spec.runDir)).toEqual([]);
      expect(await ctx.hostGroupExists(spec.id)).toBe(false);
      await rm(spec.runDir, { recursive: true, force: true });
    });

    it("rejects a spec it cannot run with invalid_argument", async () => {
      const spec = await newSpec({ vcpus: 0 });
      await expect(ctx.driver.boot(spec)).rejects.toMatchObject({ code: "invalid_argument" });
      await rm(spec.runDir, { recursive: true, force: true });
    });

    it("attaches a NIC on a TAP inside the sandbox's network namespace", async () => {
      const netns = `wvt-${randomBytes(3).toString("hex")}`;
      await run("ip", ["netns", "add", netns]);
      try {
        await run("ip", ["-n", netns, "tuntap", "add", "dev", "tap0", "mode", "tap"]);
        const spec = await newSpec({ network: { netnsName: netns, tapName: "tap0", guestMac: GUEST_MAC } });
        const vm = await boot(spec);
        // The tracked pid is the VMM itself, and it lives in the sandbox's namespace.
        const nsInode = (await stat(join("/run/netns", netns))).ino;
        expect(await readlink(`/proc/${vm.pid}/ns/net`)).toBe(`net:[${nsInode}]`);
        await vm.kill();
        await assertGone(spec, vm);
      } finally {
        await run("ip", ["netns", "del", netns]);
      }
    });

    it("refuses a network namespace that does not exist", async () => {
      const spec = await newSpec({
        network: { netnsName: "wvt-absent", tapName: "tap0", guestMac: GUEST_MAC },
      });
      await expect(ctx.driver.boot(spec)).rejects.toMatchObject({ code: "failed_precondition" });
      expect(await ctx.hostGroupExists(spec.id)).toBe(false);
      await rm(spec.runDir, { recursive: true, force: true });
    });
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitForConsole(
  path: string,
  timeoutMs: number,
  done: (text: string) => boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = await readFile(path, "utf8").catch(() => "");
    if (done(text)) return;
    await sleep(20);
  }
  throw new Error(
    `console did not show the expected lines within ${timeoutMs} ms; last lines: ${text.slice(-800)}`,
  );
}

async function processAlive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
  return !!state && state !== "Z" && state !== "X";
}

/** Pids of live processes whose command line mentions `path`. */
export async function processesUsing(path: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "");
    if (cmdline.includes(path) && (await processAlive(Number(entry)))) pids.push(Number(entry));
  }
  return pids;
}

async function memoryOf(pid: number): Promise<Record<string, number>> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const out: Record<string, number> = {};
  for (const key of ["VmRSS", "RssAnon", "RssFile", "RssShmem"]) {
    const kb = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1];
    if (kb) out[`${key}MiB`] = Math.round(Number(kb) / 1024);
  }
  return out;
}
