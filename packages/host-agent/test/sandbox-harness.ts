/**
 * What SandboxManager's unit tests run it over: a fake VmmDriver (no VMs), a fake network
 * (no namespaces, no root), a fake guest envd (fake-envd.ts), and the real record store, slot
 * allocator, qcow2 overlays, memory store and snapshot store on a temp dir.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterEach, beforeEach } from "vitest";
import { ImageCatalog } from "../src/images/image-catalog.js";
import type { NetworkManager, SandboxNetwork } from "../src/network/sandbox-network.js";
import { SlotAllocator } from "../src/network/slot-allocator.js";
import type { SandboxManagerOptions } from "../src/sandbox/sandbox-deps.js";
import { SandboxManager } from "../src/sandbox/sandbox-manager.js";
import { type SandboxRecord, SandboxRecordStore } from "../src/sandbox/sandbox-record.js";
import { SnapshotStore } from "../src/sandbox/snapshot-store.js";
import type { ImageSnapshotCache } from "../src/snapshot/image-snapshot-cache.js";
import { MemorySnapshotStore } from "../src/snapshot/memory-store.js";
import { Qcow2OverlayStore } from "../src/storage/qcow2-overlays.js";
import type {
  GuestMemoryLocation,
  VmExit,
  VmHandle,
  VmmDriver,
  VmRestoreSource,
  VmRunState,
  VmSpec,
} from "../src/vmm/vmm-driver.js";
import { FakeEnvd } from "./fake-envd.js";

/** Pids no real process has (above the kernel's largest pid_max). */
let nextPid = 5_000_000;

export class FakeVm implements VmHandle {
  readonly pid = nextPid++;
  readonly accel = "tcg" as const;
  readonly exited: Promise<VmExit>;
  readonly consolePath: string;
  state: VmRunState;
  failResumeVcpus: Error | undefined;
  private exit: ((exit: VmExit) => void) | undefined;
  private exitedWith: VmExit | undefined;

  constructor(
    readonly spec: VmSpec,
    readonly restoredFrom: VmRestoreSource | undefined,
  ) {
    this.id = spec.id;
    this.consolePath = join(spec.runDir, "console.log");
    this.state = restoredFrom ? "paused" : "running";
    this.exited = new Promise((resolve) => {
      this.exit = resolve;
    });
  }

  readonly id: string;

  get alive(): boolean {
    return this.exitedWith === undefined;
  }

  private end(exit: VmExit): VmExit {
    if (!this.exitedWith) {
      this.exitedWith = exit;
      this.state = "other";
      this.exit?.(exit);
    }
    return this.exitedWith;
  }

  /** The VMM dies on its own (crash, OOM kill). */
  die(): void {
    this.end({ code: null, signal: "SIGSEGV", expected: false });
  }

  async pauseVcpus(): Promise<void> {
    this.state = "paused";
  }

  async resumeVcpus(): Promise<void> {
    if (this.failResumeVcpus) throw this.failResumeVcpus;
    this.state = "running";
  }

  async runState(): Promise<VmRunState> {
    return this.state;
  }

  async saveDeviceState(path: string): Promise<void> {
    await writeFile(path, `device state of ${this.id}`);
  }

  /** Some anonymous memory the test process can read through /proc (its own stack stands in for guest RAM). */
  async guestMemory(): Promise<GuestMemoryLocation> {
    const line = readFileSync("/proc/self/maps", "utf8")
      .split("\n")
      .find((l) => l.endsWith("[stack]"));
    const m = /^([0-9a-f]+)-([0-9a-f]+)/.exec(line ?? "");
    if (!m) throw new Error("no [stack] mapping in /proc/self/maps");
    const start = BigInt(`0x${m[1]}`);
    return { pid: process.pid, address: start, sizeBytes: Number(BigInt(`0x${m[2]}`) - start) };
  }

  async stop(): Promise<VmExit> {
    return this.end({ code: 0, signal: null, expected: true });
  }

  async kill(): Promise<VmExit> {
    return this.end({ code: null, signal: "SIGKILL", expected: true });
  }

  detach(): void {}
}

/** A VmmDriver whose VMs are objects; they "survive" an agent restart as long as the driver object does. */
export class FakeDriver implements VmmDriver {
  readonly name = "qemu" as const;
  readonly accel = "tcg" as const;
  readonly bootProfile = "tcg";
  readonly vms: FakeVm[] = [];
  failBoot: Error | undefined;
  failRestore: Error | undefined;
  /** The next VM started dies right after its VMM came up (before the guest is ready). */
  dieAfterStart = false;
  failResumeVcpus: Error | undefined;

  async boot(spec: VmSpec): Promise<VmHandle> {
    if (this.failBoot) throw this.failBoot;
    return this.started(new FakeVm(spec, undefined));
  }

  async restore(spec: VmSpec, source: VmRestoreSource): Promise<VmHandle> {
    if (this.failRestore) throw this.failRestore;
    readFileSync(source.memoryFile);
    readFileSync(source.deviceStateFile);
    for await (const _page of source.pages());
    return this.started(new FakeVm(spec, source));
  }

  async adopt(spec: VmSpec, pid: number): Promise<VmHandle | null> {
    return this.vms.find((vm) => vm.pid === pid && vm.alive && vm.spec.runDir === spec.runDir) ?? null;
  }

  private started(vm: FakeVm): FakeVm {
    vm.failResumeVcpus = this.failResumeVcpus;
    this.vms.push(vm);
    if (this.dieAfterStart) setTimeout(() => vm.die(), 10);
    return vm;
  }

  live(): FakeVm[] {
    return this.vms.filter((vm) => vm.alive);
  }

  liveOf(id: string): FakeVm | undefined {
    return this.live().find((vm) => vm.id === id);
  }
}

/** The slot's host-reachable address: a loopback address of its own. */
export function slotAddress(slot: number): string {
  return `127.0.${100 + (slot >> 8)}.${slot & 255}`;
}

/** A NetworkManager that builds nothing (no root needed); it remembers which slots have a network. */
export class FakeNetwork implements NetworkManager {
  readonly live = new Set<number>();
  failCreate: Error | undefined;

  async create(slot: number): Promise<SandboxNetwork> {
    if (this.failCreate) throw this.failCreate;
    if (this.live.has(slot)) throw new Error(`slot ${slot} already has a network`);
    this.live.add(slot);
    return {
      slot,
      netnsName: this.netnsName(slot),
      tapName: "wrenn-tap0",
      vethHostName: `ut-vh-${slot}`,
      hostReachableIp: slotAddress(slot),
      guestMac: "02:fc:00:00:00:02",
      vethHostIp: "10.12.0.2",
      vethNsIp: "10.12.0.3",
      mtu: 1500,
    };
  }

  async destroy(slot: number): Promise<void> {
    this.live.delete(slot);
  }

  async applyPolicy(slot: number): Promise<void> {
    if (!this.live.has(slot)) throw new Error(`slot ${slot} has no network`);
  }

  netnsName(slot: number): string {
    return `ut-ns-${slot}`;
  }
}

/** The real record store, with a way to make saves fail. */
export class FailableRecords extends SandboxRecordStore {
  failSave: ((record: SandboxRecord) => boolean) | undefined;

  override async save(record: SandboxRecord): Promise<void> {
    if (this.failSave?.(record)) throw new WrennError("internal", `cannot save record of ${record.id}`);
    await super.save(record);
  }
}

/** The real qcow2 overlay store, with a way to make overlay creation fail. */
export class FailableDisks extends Qcow2OverlayStore {
  failCreate: Error | undefined;

  override async createOverlay(...args: Parameters<Qcow2OverlayStore["createOverlay"]>): Promise<string> {
    if (this.failCreate) throw this.failCreate;
    return super.createOverlay(...args);
  }
}

export const TEST_OPTIONS: Omit<SandboxManagerOptions, "envdPort"> = {
  limits: {
    minVcpus: 1,
    maxVcpus: 4,
    minMemoryMiB: 128,
    maxMemoryMiB: 4096,
    minDiskMiB: 1,
    maxDiskMiB: 1024,
    maxTimeoutSec: 3600,
  },
  defaults: { vcpus: 1, memoryMiB: 256, diskMiB: 8, timeoutSec: 300, user: "user" },
  envdReadyTimeoutMs: 2000,
  envdPollIntervalMs: 20,
  envdRequestTimeoutMs: 2000,
  capacity: { vcpus: 4, memoryMiB: 2048 },
  maxConcurrentStarts: 2,
};

/** What several harnesses (agents) on one host may share. */
export interface HarnessHost {
  /** A guest images dir (makeTestImage); default one of the harness's own. */
  imagesDir?: string | undefined;
  imageSnapshotCache?: ImageSnapshotCache | undefined;
}

/** A guest image "base" as guest/build.sh lays it out (the files are never run); returns its build dir. */
export function makeTestImage(imagesDir: string, build = "build-1"): string {
  const dir = join(imagesDir, "base", build);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "vmlinuz"), "kernel");
  writeFileSync(join(dir, "initrd.img"), "initrd");
  writeFileSync(join(dir, "rootfs.ext4"), Buffer.alloc(1024 * 1024));
  symlinkSync(dir, join(imagesDir, "base", "current"));
  return dir;
}

/** One agent's state on a temp dir; `restart()` builds a new manager over the same dir, driver and network. */
export class Harness {
  readonly dir: string;
  readonly sandboxesDir: string;
  readonly driver = new FakeDriver();
  readonly network = new FakeNetwork();
  readonly records: FailableRecords;
  readonly disks: FailableDisks;
  slots!: SlotAllocator;
  manager!: SandboxManager;

  readonly imagesDir: string;

  private constructor(
    readonly envd: FakeEnvd,
    private readonly options: Partial<SandboxManagerOptions>,
    private readonly host: HarnessHost,
  ) {
    this.dir = mkdtempSync(join(tmpdir(), "wrenn-manager-test-"));
    this.sandboxesDir = join(this.dir, "sandboxes");
    mkdirSync(this.sandboxesDir);
    this.imagesDir = host.imagesDir ?? join(this.dir, "images");
    if (!host.imagesDir) makeTestImage(this.imagesDir);
    mkdirSync(join(this.dir, "memory"));
    this.records = new FailableRecords(this.sandboxesDir);
    this.disks = new FailableDisks(this.sandboxesDir);
  }

  static async create(
    options: Partial<SandboxManagerOptions> = {},
    host: HarnessHost = {},
  ): Promise<Harness> {
    const harness = new Harness(await FakeEnvd.start(), options, host);
    await harness.restart();
    return harness;
  }

  /** A new manager (and slot allocator) over the same files, as after an agent restart. */
  async restart(): Promise<SandboxManager> {
    this.slots = await SlotAllocator.create(join(this.dir, "slots.json"), 4);
    this.manager = new SandboxManager(
      {
        driver: this.driver,
        network: this.network,
        slots: this.slots,
        disks: this.disks,
        images: new ImageCatalog(this.imagesDir),
        records: this.records,
        memory: new MemorySnapshotStore(join(this.dir, "memory"), { maxDiffChain: 4 }),
        snapshots: await SnapshotStore.open(join(this.dir, "templates")),
        imageSnapshotCache: this.host.imageSnapshotCache,
        logger: createSilentLogger(),
      },
      { ...TEST_OPTIONS, envdPort: this.envd.port, ...this.options },
    );
    return this.manager;
  }

  /** A sandbox's record as the record store last wrote it; undefined when it has none. */
  recordOnDisk(id: string): SandboxRecord | undefined {
    const path = join(this.records.dirFor(id), "record.json");
    return existsSync(path) ? (JSON.parse(readFileSync(path, "utf8")) as SandboxRecord) : undefined;
  }

  async close(): Promise<void> {
    await this.manager.close({ destroyAll: true });
    for (const vm of this.driver.live()) await vm.kill();
    await this.envd.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * A new Harness for each test of the calling file, handed to `use` before the test and closed
 * after it. A test that needs other options calls `renew`, which closes the current one and
 * hands over a new one.
 */
export function harnessForEachTest(
  use: (harness: Harness) => void,
  options: Partial<SandboxManagerOptions> = {},
): { renew(options: Partial<SandboxManagerOptions>): Promise<void> } {
  let current: Harness | undefined;
  const next = async (chosen: Partial<SandboxManagerOptions>) => {
    current = await Harness.create(chosen);
    use(current);
  };
  beforeEach(() => next(options));
  afterEach(async () => {
    await current?.close();
    current = undefined;
  });
  return {
    async renew(other) {
      await current?.close();
      current = undefined;
      await next(other);
    },
  };
}

/** The WrennError code a promise rejects with, or "resolved". */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return WrennError.from(err).code;
  }
  return "resolved";
}
