import { randomBytes } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, newSandboxId, WrennError } from "@wrenn/shared";
import { EnvdClient } from "../envd-client/envd-client.js";
import type { ImageCatalog } from "../images/image-catalog.js";
import {
  ENVD_PORT,
  GUEST_GATEWAY_IP,
  GUEST_IP,
  GUEST_PREFIX_LENGTH,
  type NetworkManager,
  type SandboxNetwork,
} from "../network/sandbox-network.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import type { VmExit, VmHandle, VmmDriver, VmSpec } from "../vmm/vmm-driver.js";
import { UndoStack } from "./create-undo.js";
import { type SandboxLimits, validateEnvVars, validateResources, validateTimeout } from "./sandbox-limits.js";
import type {
  SandboxRecord,
  SandboxRecordStore,
  SandboxResources,
  SandboxStateName,
  TimeoutActionName,
} from "./sandbox-record.js";

/** Network slots, leased per sandbox and persisted so they survive an agent restart. */
export interface SlotLeases {
  acquire(owner: string): Promise<number>;
  release(slot: number): Promise<void>;
}

export interface SandboxManagerDeps {
  driver: VmmDriver;
  network: NetworkManager;
  slots: SlotLeases;
  disks: DiskLayerStore;
  images: ImageCatalog;
  records: SandboxRecordStore;
  logger: Logger;
  now?: () => Date;
}

export interface SandboxManagerOptions {
  limits: SandboxLimits;
  defaults: SandboxResources & { timeoutSec: number; user: string };
  /** How long a booting guest may take to answer envd's /health. */
  envdReadyTimeoutMs: number;
  envdPollIntervalMs: number;
  /** Per unary envd request. */
  envdRequestTimeoutMs: number;
  /** Host-wide budget: the sum over running sandboxes may not exceed it. */
  capacity: { vcpus: number; memoryMiB: number };
}

export interface CreateSandboxInput {
  sandboxId?: string | undefined;
  template: string;
  /** Unset sizes take the defaults; explicit zeros are rejected. */
  resources?:
    | { vcpus?: number | undefined; memoryMiB?: number | undefined; diskMiB?: number | undefined }
    | undefined;
  timeoutSec?: number | undefined;
  timeoutAction?: TimeoutActionName | undefined;
  envVars?: Record<string, string> | undefined;
  envdAccessToken?: string | undefined;
  metadata?: Record<string, string> | undefined;
  defaultUser?: string | undefined;
  defaultWorkdir?: string | undefined;
}

/** A sandbox as the manager holds it in memory: the record plus live handles. */
export interface SandboxEntry {
  record: SandboxRecord;
  vm: VmHandle | undefined;
  envd: EnvdClient | undefined;
  timer: NodeJS.Timeout | undefined;
}

const ID_RE = /^[a-z0-9][a-z0-9-]{2,62}$/;

/**
 * Owns every sandbox on this host: creates (unwinding on failure), destroys,
 * notices VMMs that die, enforces the inactivity timeout, and re-adopts VMs after
 * an agent restart. In-memory state is the truth; records on disk back it up.
 */
export class SandboxManager {
  private readonly entries = new Map<string, SandboxEntry>();
  /** Serialises lifecycle operations per sandbox. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;
  private closed = false;

  constructor(
    private readonly deps: SandboxManagerDeps,
    private readonly options: SandboxManagerOptions,
  ) {
    this.now = deps.now ?? (() => new Date());
  }

  private get logger(): Logger {
    return this.deps.logger;
  }

  private async withLock<T>(id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve();
    const run = previous.catch(() => {}).then(fn);
    this.locks.set(id, run);
    try {
      return await run;
    } finally {
      if (this.locks.get(id) === run) this.locks.delete(id);
    }
  }

  list(): SandboxRecord[] {
    return [...this.entries.values()].map((e) => e.record);
  }

  get(id: string): SandboxRecord {
    return this.entry(id).record;
  }

  private entry(id: string): SandboxEntry {
    const entry = this.entries.get(id);
    if (!entry) throw new WrennError("not_found", `sandbox ${id} not found`);
    return entry;
  }

  /** Resources held by sandboxes that occupy a VM right now. */
  allocated(): { vcpus: number; memoryMiB: number; diskMiB: number } {
    let vcpus = 0;
    let memoryMiB = 0;
    let diskMiB = 0;
    for (const { record } of this.entries.values()) {
      if (record.state === "running" || record.state === "pending") {
        vcpus += record.resources.vcpus;
        memoryMiB += record.resources.memoryMiB;
      }
      if (record.state !== "stopped") diskMiB += record.resources.diskMiB;
    }
    return { vcpus, memoryMiB, diskMiB };
  }

  /** The envd client of a running sandbox; marks activity (extends its inactivity timeout). */
  envdFor(id: string): EnvdClient {
    const entry = this.entry(id);
    if (entry.record.state !== "running" || !entry.envd) {
      throw new WrennError("failed_precondition", `sandbox ${id} is ${entry.record.state}, not running`);
    }
    this.touch(entry);
    return entry.envd;
  }

  vmmPid(id: string): number | undefined {
    return this.entries.get(id)?.vm?.pid;
  }

  async create(input: CreateSandboxInput): Promise<SandboxRecord> {
    if (this.closed) throw new WrennError("unavailable", "host agent is shutting down");
    const id = input.sandboxId || newSandboxId();
    if (!ID_RE.test(id)) {
      throw new WrennError("invalid_argument", `sandbox id "${id}" is not valid (3-63 of a-z, 0-9, -)`);
    }
    if (this.entries.has(id)) throw new WrennError("already_exists", `sandbox ${id} already exists`);
    const resources: SandboxResources = {
      vcpus: input.resources?.vcpus ?? this.options.defaults.vcpus,
      memoryMiB: input.resources?.memoryMiB ?? this.options.defaults.memoryMiB,
      diskMiB: input.resources?.diskMiB ?? this.options.defaults.diskMiB,
    };
    validateResources(resources, this.options.limits);
    const timeoutSec = input.timeoutSec || this.options.defaults.timeoutSec;
    validateTimeout(timeoutSec, this.options.limits);
    const envVars = input.envVars ?? {};
    validateEnvVars(envVars);
    const image = await this.deps.images.get(input.template);
    this.admit(resources);

    const createdAt = this.now();
    const record: SandboxRecord = {
      id,
      template: input.template,
      state: "pending",
      resources,
      createdAt: createdAt.toISOString(),
      timeoutSec,
      timeoutAction: input.timeoutAction ?? "destroy",
      expiresAt: new Date(createdAt.getTime() + timeoutSec * 1000).toISOString(),
      metadata: input.metadata ?? {},
      envVars,
      envdAccessToken: input.envdAccessToken || randomBytes(24).toString("hex"),
      defaultUser: input.defaultUser || this.options.defaults.user,
      defaultWorkdir: input.defaultWorkdir ?? "",
      runDir: join(this.deps.records.dirFor(id), "run"),
    };
    const entry: SandboxEntry = { record, vm: undefined, envd: undefined, timer: undefined };
    this.entries.set(id, entry);

    return this.withLock(id, async () => {
      const undo = new UndoStack();
      const log = this.logger.child({ sandbox: id });
      try {
        // The record goes to disk first and after every step, so a crash mid-create can be undone.
        await this.deps.records.save(record);
        undo.push("record", () => this.deps.records.remove(id));

        record.slot = await this.deps.slots.acquire(id);
        const slot = record.slot;
        undo.push("slot", () => this.deps.slots.release(slot));
        await this.deps.records.save(record);

        const network = await this.deps.network.create(slot);
        undo.push("network", () => this.deps.network.destroy(slot));
        record.hostIp = network.hostReachableIp;
        await this.deps.records.save(record);

        record.overlayPath = await this.deps.disks.createOverlay(id, image.rootfsPath, resources.diskMiB);
        undo.push("overlay", () => this.deps.disks.removeOverlay(id));
        await mkdir(record.runDir, { recursive: true });

        const vm = await this.deps.driver.boot(this.vmSpec(record, network, image));
        entry.vm = vm;
        undo.push("vm", () => vm.kill());
        record.vmmPid = vm.pid;
        await this.deps.records.save(record);

        const envd = this.envdClient(record);
        await this.waitForEnvd(envd, vm, record);
        await envd.init({
          envVars: record.envVars,
          accessToken: record.envdAccessToken,
          defaultUser: record.defaultUser,
          defaultWorkdir: record.defaultWorkdir || undefined,
          timestamp: this.now(),
        });
        entry.envd = envd;
        record.state = "running";
        record.expiresAt = new Date(this.now().getTime() + timeoutSec * 1000).toISOString();
        await this.deps.records.save(record);
        undo.clear();
        this.watchExit(entry, vm);
        this.armTimer(entry);
        log.info("sandbox running", { slot, pid: vm.pid, template: input.template });
        return record;
      } catch (err) {
        log.warn("create failed, unwinding", { err });
        await undo.unwind(log);
        this.entries.delete(id);
        throw WrennError.from(err);
      }
    });
  }

  private admit(resources: SandboxResources): void {
    const used = this.allocated();
    const { capacity } = this.options;
    if (
      used.vcpus + resources.vcpus > capacity.vcpus ||
      used.memoryMiB + resources.memoryMiB > capacity.memoryMiB
    ) {
      throw new WrennError(
        "no_capacity",
        `host is full: ${used.vcpus}/${capacity.vcpus} vCPUs and ${used.memoryMiB}/${capacity.memoryMiB} MiB in use`,
      );
    }
  }

  private vmSpec(
    record: SandboxRecord,
    network: Pick<SandboxNetwork, "netnsName" | "tapName" | "guestMac">,
    image: { kernelPath: string; initrdPath: string; kernelArgs: string },
  ): VmSpec {
    const ip = `ip=${GUEST_IP}::${GUEST_GATEWAY_IP}:${GUEST_PREFIX_LENGTH}:sandbox:eth0:off`;
    return {
      id: record.id,
      vcpus: record.resources.vcpus,
      memoryMiB: record.resources.memoryMiB,
      kernelPath: image.kernelPath,
      initrdPath: image.initrdPath,
      kernelArgs: `root=/dev/vda rw ${ip} ${image.kernelArgs}`.trim(),
      rootDiskPath: record.overlayPath ?? "",
      network: { netnsName: network.netnsName, tapName: network.tapName, guestMac: network.guestMac },
      runDir: record.runDir,
    };
  }

  private envdClient(record: SandboxRecord): EnvdClient {
    return new EnvdClient({
      baseUrl: `http://${record.hostIp}:${ENVD_PORT}`,
      accessToken: record.envdAccessToken,
      requestTimeoutMs: this.options.envdRequestTimeoutMs,
    });
  }

  /** Waits for envd's /health, failing fast (with the console's last lines) if the VMM dies first. */
  private async waitForEnvd(envd: EnvdClient, vm: VmHandle, record: SandboxRecord): Promise<void> {
    const abort = new AbortController();
    const died = vm.exited.then(async (exit) => {
      abort.abort();
      const tail = await this.consoleTail(record);
      throw new WrennError(
        "internal",
        `VMM exited during boot (code ${exit.code}, signal ${exit.signal})${tail ? `; console: ${tail}` : ""}`,
      );
    });
    try {
      await Promise.race([
        envd.waitHealthy({
          timeoutMs: this.options.envdReadyTimeoutMs,
          intervalMs: this.options.envdPollIntervalMs,
          signal: abort.signal,
        }),
        died,
      ]);
    } catch (err) {
      if (err instanceof WrennError && err.code === "deadline_exceeded") {
        const tail = await this.consoleTail(record);
        throw new WrennError("deadline_exceeded", `${err.message}${tail ? `; console: ${tail}` : ""}`);
      }
      throw err;
    } finally {
      abort.abort();
      died.catch(() => {});
    }
  }

  private async consoleTail(record: SandboxRecord): Promise<string> {
    const text = await readFile(join(record.runDir, "console.log"), "utf8").catch(() => "");
    return text.trim().split("\n").slice(-5).join(" | ").slice(-600);
  }

  private watchExit(entry: SandboxEntry, vm: VmHandle): void {
    vm.exited.then(
      (exit) => this.onVmExit(entry, vm, exit),
      () => {},
    );
  }

  private async onVmExit(entry: SandboxEntry, vm: VmHandle, exit: VmExit): Promise<void> {
    if (exit.expected || entry.vm !== vm || this.closed) return;
    const { record } = entry;
    await this.withLock(record.id, async () => {
      if (entry.vm !== vm) return;
      const reason = `VMM exited unexpectedly (code ${exit.code}, signal ${exit.signal})`;
      this.logger.warn("sandbox VM died", { sandbox: record.id, reason });
      await this.releaseVmResources(entry);
      record.state = "error";
      record.error = reason;
      await this.deps.records.save(record).catch(() => {});
    });
  }

  /** Frees everything a VM held (process, network, slot, disk layer, run dir); keeps the entry. */
  private async releaseVmResources(entry: SandboxEntry): Promise<void> {
    const { record } = entry;
    this.clearTimer(entry);
    const vm = entry.vm;
    entry.vm = undefined;
    entry.envd = undefined;
    if (vm) await vm.kill().catch((err: unknown) => this.logger.error("kill VMM failed", { err }));
    else if (record.vmmPid) await killOrphanVmm(record.vmmPid, record.runDir);
    if (record.slot !== undefined) {
      await this.deps.network.destroy(record.slot);
      await this.deps.slots.release(record.slot);
      record.slot = undefined;
      record.hostIp = undefined;
    }
    await this.deps.disks.removeOverlay(record.id);
    record.overlayPath = undefined;
    record.vmmPid = undefined;
    await rm(record.runDir, { recursive: true, force: true });
  }

  async destroy(id: string): Promise<void> {
    const entry = this.entry(id);
    await this.withLock(id, async () => {
      if (!this.entries.has(id)) return;
      await this.releaseVmResources(entry);
      entry.record.state = "stopped";
      await this.deps.records.remove(id);
      this.entries.delete(id);
      this.logger.info("sandbox destroyed", { sandbox: id });
    });
  }

  /** Marks activity and optionally changes the timeout; returns the updated record. */
  ping(id: string, timeoutSec?: number): SandboxRecord {
    const entry = this.entry(id);
    if (timeoutSec) {
      validateTimeout(timeoutSec, this.options.limits);
      entry.record.timeoutSec = timeoutSec;
    }
    if (entry.record.state === "running") this.touch(entry);
    return entry.record;
  }

  private touch(entry: SandboxEntry): void {
    entry.record.expiresAt = new Date(this.now().getTime() + entry.record.timeoutSec * 1000).toISOString();
    this.armTimer(entry);
  }

  private clearTimer(entry: SandboxEntry): void {
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = undefined;
  }

  private armTimer(entry: SandboxEntry): void {
    this.clearTimer(entry);
    const delay = Math.max(0, new Date(entry.record.expiresAt).getTime() - this.now().getTime());
    // setTimeout caps at ~24.8 days; re-arm on wake if the deadline is further away.
    entry.timer = setTimeout(() => this.onTimeout(entry), Math.min(delay, 2 ** 31 - 1));
    entry.timer.unref();
  }

  private onTimeout(entry: SandboxEntry): void {
    const { record } = entry;
    if (new Date(record.expiresAt).getTime() > this.now().getTime()) {
      this.armTimer(entry);
      return;
    }
    this.logger.info("sandbox inactivity timeout", { sandbox: record.id, action: record.timeoutAction });
    this.destroy(record.id).catch((err: unknown) =>
      this.logger.error("timeout destroy failed", { sandbox: record.id, err }),
    );
  }

  /**
   * After an agent restart: re-adopt VMs that still run, clean up after the rest.
   * Returns the ids of sandboxes it kept.
   */
  async recover(): Promise<{ adopted: string[]; cleaned: string[] }> {
    const { records, unreadable } = await this.deps.records.loadAll();
    const adopted: string[] = [];
    const cleaned: string[] = [];
    for (const id of unreadable) {
      await this.deps.records.remove(id);
      cleaned.push(id);
    }
    for (const record of records) {
      const entry: SandboxEntry = { record, vm: undefined, envd: undefined, timer: undefined };
      let vm: VmHandle | null = null;
      if (record.state === "running" && record.vmmPid && record.slot !== undefined && record.hostIp) {
        const image = await this.deps.images.get(record.template).catch(() => null);
        if (image) {
          const network = {
            netnsName: this.deps.network.netnsName(record.slot),
            tapName: "wrenn-tap0",
            guestMac: "",
          };
          vm = await this.deps.driver
            .adopt(this.vmSpec(record, network, image), record.vmmPid)
            .catch(() => null);
        }
      }
      if (vm) {
        entry.vm = vm;
        entry.envd = this.envdClient(record);
        this.entries.set(record.id, entry);
        this.watchExit(entry, vm);
        this.armTimer(entry);
        adopted.push(record.id);
        continue;
      }
      // A sandbox half-created or whose VM died while the agent was away: free everything.
      await this.releaseVmResources(entry).catch((err: unknown) =>
        this.logger.error("recovery cleanup failed", { sandbox: record.id, err }),
      );
      if (record.state === "running") {
        record.state = "error";
        record.error = "VMM exited while the host agent was down";
        this.entries.set(record.id, entry);
        await this.deps.records.save(record);
      } else {
        await this.deps.records.remove(record.id);
        cleaned.push(record.id);
      }
    }
    return { adopted, cleaned };
  }

  /** Slots held by sandboxes this manager knows about (the rest may be swept). */
  slotsInUse(): Set<number> {
    const slots = new Set<number>();
    for (const { record } of this.entries.values()) if (record.slot !== undefined) slots.add(record.slot);
    return slots;
  }

  /** Stops timers; with destroyAll, destroys every sandbox, else leaves VMs running for re-adoption. */
  async close(options: { destroyAll: boolean }): Promise<void> {
    for (const entry of this.entries.values()) this.clearTimer(entry);
    if (options.destroyAll) {
      await Promise.allSettled([...this.entries.keys()].map((id) => this.destroy(id)));
    }
    this.closed = true;
  }

  stateOf(id: string): SandboxStateName | undefined {
    return this.entries.get(id)?.record.state;
  }
}

/** Kills a VMM left from before a restart, but only if the pid still belongs to it (pids get reused). */
async function killOrphanVmm(pid: number, runDir: string): Promise<void> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes(runDir)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 100 && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")) !== ""; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
}
