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
  SlotAddressesTakenError,
} from "../network/sandbox-network.js";
import { readPages, selectPages } from "../snapshot/guest-memory.js";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import type { VmExit, VmHandle, VmmDriver, VmSpec } from "../vmm/vmm-driver.js";
import type { CreateSandboxInput } from "./create-input.js";
import { UndoStack } from "./create-undo.js";
import { type SandboxLimits, validateEnvVars, validateResources, validateTimeout } from "./sandbox-limits.js";
import type {
  SandboxRecord,
  SandboxRecordStore,
  SandboxResources,
  SandboxStateName,
} from "./sandbox-record.js";
import { type PausedRecord, type SandboxesPort, SnapshotTemplates } from "./snapshot-templates.js";
import { StartGate } from "./start-gate.js";
import type { TemplateStore } from "./template-store.js";

/** Network slots, leased per sandbox and persisted so they survive an agent restart. */
export interface SlotLeases {
  acquire(owner: string): Promise<number>;
  release(slot: number): Promise<void>;
  /** Releases a slot and skips it for a while: something else on the host holds its addresses. */
  setAside(slot: number): Promise<void>;
}

export interface SandboxManagerDeps {
  driver: VmmDriver;
  network: NetworkManager;
  slots: SlotLeases;
  disks: DiskLayerStore;
  images: ImageCatalog;
  records: SandboxRecordStore;
  memory: MemorySnapshotStore;
  templates: TemplateStore;
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
  /** VM boots and restores running at once (the rest queue). */
  maxConcurrentStarts: number;
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
export class SandboxManager implements SandboxesPort {
  /** Snapshot templates and fork (they call back into this manager through SandboxesPort). */
  readonly snapshots: SnapshotTemplates;
  private readonly entries = new Map<string, SandboxEntry>();
  /** Serialises lifecycle operations per sandbox. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;
  private closed = false;
  private readonly starts: StartGate;
  /** Snapshot writes and garbage collection of snapshot files never overlap. */
  private storage: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly deps: SandboxManagerDeps,
    private readonly options: SandboxManagerOptions,
  ) {
    this.now = deps.now ?? (() => new Date());
    this.starts = new StartGate(options.maxConcurrentStarts);
    this.snapshots = new SnapshotTemplates(
      {
        templates: deps.templates,
        disks: deps.disks,
        memory: deps.memory,
        records: deps.records,
        logger: deps.logger,
        now: this.now,
        withStorage: (fn) => this.withStorage(fn),
      },
      this,
    );
  }

  private get logger(): Logger {
    return this.deps.logger;
  }

  private withStorage<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.storage.then(fn, fn);
    this.storage = run.catch(() => {});
    return run;
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

  /** True while a lifecycle operation on the sandbox runs or waits (its state is about to change). */
  isBusy(id: string): boolean {
    return this.locks.has(id);
  }

  /** Resolves once no lifecycle operation on the sandbox runs or waits (its state is settled). */
  async settled(id: string): Promise<void> {
    for (let lock = this.locks.get(id); lock; lock = this.locks.get(id)) await lock.catch(() => {});
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

  /** Where a running sandbox's ports answer (its slot's host-side address); undefined otherwise. */
  trafficAddress(id: string): string | undefined {
    const record = this.entries.get(id)?.record;
    return record?.state === "running" ? record.hostIp : undefined;
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
    const source = input.snapshot ? this.snapshots.live(input.snapshot, true) : undefined;
    const resources: SandboxResources = source
      ? this.snapshots.resourcesFor(source, input.resources)
      : {
          vcpus: input.resources?.vcpus ?? this.options.defaults.vcpus,
          memoryMiB: input.resources?.memoryMiB ?? this.options.defaults.memoryMiB,
          diskMiB: input.resources?.diskMiB ?? this.options.defaults.diskMiB,
        };
    validateResources(resources, this.options.limits);
    const timeoutSec = input.timeoutSec || this.options.defaults.timeoutSec;
    validateTimeout(timeoutSec, this.options.limits);
    const envVars = input.envVars ?? {};
    validateEnvVars(envVars);
    const image = await this.deps.images.get(source ? source.baseTemplate : input.template);
    this.admit(resources);

    const createdAt = this.now();
    const record: SandboxRecord = {
      id,
      template: source ? source.baseTemplate : input.template,
      state: "pending",
      resources,
      createdAt: createdAt.toISOString(),
      timeoutSec,
      timeoutAction: input.timeoutAction ?? "pause",
      expiresAt: new Date(createdAt.getTime() + timeoutSec * 1000).toISOString(),
      metadata: input.metadata ?? {},
      envVars,
      envdAccessToken: input.envdAccessToken || randomBytes(24).toString("hex"),
      defaultUser: input.defaultUser || source?.defaultUser || this.options.defaults.user,
      defaultWorkdir: input.defaultWorkdir ?? source?.defaultWorkdir ?? "",
      runDir: join(this.deps.records.dirFor(id), "run"),
      ...(source
        ? {
            fromSnapshot: source.name,
            memorySnapshot: source.memorySnapshot,
            dependsOn: [...source.dependsOn, source.id],
          }
        : {}),
    };
    const entry: SandboxEntry = { record, vm: undefined, envd: undefined, timer: undefined };
    this.entries.set(id, entry);

    return this.withLock(id, () =>
      this.starts.run(async () => {
        const undo = new UndoStack();
        const log = this.logger.child({ sandbox: id });
        try {
          // The record goes to disk first and after every step, so a crash mid-create can be undone.
          await this.deps.records.save(record);
          undo.push("record", () => this.deps.records.remove(id));
          const plan = source ? await this.deps.memory.planRestore(source.memorySnapshot) : undefined;

          const network = await this.attachNetwork(entry, undo);
          record.overlayPath = source
            ? await this.deps.disks.createOverlay(id, source.diskPath, resources.diskMiB, {
                baseFormat: "qcow2",
              })
            : await this.deps.disks.createOverlay(id, image.rootfsPath, resources.diskMiB);
          undo.push("overlay", () => this.deps.disks.removeOverlay(id));
          await mkdir(record.runDir, { recursive: true });

          const spec = this.vmSpec(record, network, image);
          const vm = plan
            ? await this.deps.driver.restore(spec, {
                memoryFile: plan.baseFile,
                deviceStateFile: plan.deviceStateFile,
                pages: plan.pages,
              })
            : await this.deps.driver.boot(spec);
          entry.vm = vm;
          undo.push("vm", () => vm.kill());
          record.vmmPid = vm.pid;
          await this.deps.records.save(record);
          if (plan) await vm.resumeVcpus();

          const envd = this.envdClient(record);
          await this.waitForEnvd(envd, vm, record);
          // A clone's envd still holds its template's token until this /init replaces it.
          const initClient = source
            ? this.envdClient({ ...record, envdAccessToken: source.envdAccessToken })
            : envd;
          try {
            await this.initEnvd(initClient, envd, record, source !== undefined);
          } finally {
            if (initClient !== envd) initClient.close("init done");
          }
          entry.envd = envd;
          record.state = "running";
          record.expiresAt = new Date(this.now().getTime() + timeoutSec * 1000).toISOString();
          await this.deps.records.save(record);
          undo.clear();
          this.watchExit(entry, vm);
          this.armTimer(entry);
          log.info("sandbox running", {
            slot: record.slot,
            pid: vm.pid,
            template: record.template,
            snapshot: input.snapshot,
          });
          return record;
        } catch (err) {
          log.warn("create failed, unwinding", { err });
          await undo.unwind(log);
          this.entries.delete(id);
          throw WrennError.from(err);
        }
      }),
    );
  }

  /**
   * Leases a slot and builds its network; both are undone by `undo` on failure. A slot whose
   * addresses something else on the host holds is set aside and the next one tried.
   */
  private async attachNetwork(entry: SandboxEntry, undo: UndoStack): Promise<SandboxNetwork> {
    const { record } = entry;
    for (;;) {
      const slot = await this.deps.slots.acquire(record.id);
      record.slot = slot;
      let network: SandboxNetwork;
      try {
        await this.deps.records.save(record);
        network = await this.deps.network.create(slot);
      } catch (err) {
        record.slot = undefined;
        if (!(err instanceof SlotAddressesTakenError)) {
          await this.deps.slots.release(slot);
          throw err;
        }
        // Not ours to touch: skip the slot (acquire runs out with no_capacity eventually).
        this.logger.warn("network slot held by something else on the host; skipping it", {
          slot,
          holders: err.holders,
        });
        await this.deps.slots.setAside(slot);
        continue;
      }
      undo.push("slot", async () => {
        await this.deps.slots.release(slot);
        record.slot = undefined;
      });
      undo.push("network", async () => {
        await this.deps.network.destroy(slot);
        record.hostIp = undefined;
      });
      record.hostIp = network.hostReachableIp;
      await this.deps.records.save(record);
      return network;
    }
  }

  /**
   * envd's /init after boot or restore (a restored VM also gets fresh entropy).
   * Sends envd /init until it lands or `envdReadyTimeoutMs` passes: a guest starved of
   * CPU (many VMs starting on few cores) can miss one request's deadline. A clone answers
   * 401 to its template's token once an earlier attempt has landed; its own token then
   * finishes the job (/init is idempotent).
   */
  private async initEnvd(
    first: EnvdClient,
    own: EnvdClient,
    record: SandboxRecord,
    restored: boolean,
  ): Promise<void> {
    const deadline = Date.now() + this.options.envdReadyTimeoutMs;
    let client = first;
    for (;;) {
      try {
        await client.init(this.initPayload(record, restored));
        return;
      } catch (err) {
        const error = WrennError.from(err);
        if (error.code === "unauthenticated" && client !== own) {
          client = own;
          continue;
        }
        if (error.code !== "unavailable" || Date.now() >= deadline) throw err;
        this.logger.warn("envd init retried", { sandbox: record.id, err: error.message });
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private initPayload(record: SandboxRecord, restored: boolean) {
    return {
      envVars: record.envVars,
      accessToken: record.envdAccessToken,
      defaultUser: record.defaultUser,
      defaultWorkdir: record.defaultWorkdir || undefined,
      timestamp: this.now(),
      entropy: restored ? randomBytes(64) : undefined,
    };
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
    await this.releaseRuntime(entry);
    const { record } = entry;
    await this.deps.disks.removeOverlay(record.id);
    record.overlayPath = undefined;
    await rm(record.runDir, { recursive: true, force: true });
  }

  /** Frees what only a running VM holds (process, network, slot); the disk layer stays. */
  private async releaseRuntime(entry: SandboxEntry): Promise<void> {
    const { record } = entry;
    this.clearTimer(entry);
    const vm = entry.vm;
    entry.vm = undefined;
    entry.envd?.close(`sandbox ${record.id} stopped`);
    entry.envd = undefined;
    if (vm) await vm.kill().catch((err: unknown) => this.logger.error("kill VMM failed", { err }));
    else if (record.vmmPid) await killOrphanVmm(record.vmmPid, record.runDir);
    if (record.slot !== undefined) {
      await this.deps.network.destroy(record.slot);
      await this.deps.slots.release(record.slot);
      record.slot = undefined;
      record.hostIp = undefined;
    }
    record.vmmPid = undefined;
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
    if (entry.record.memorySnapshot || entry.record.dependsOn?.length) await this.snapshots.collectGarbage();
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
    if (record.timeoutAction === "pause") {
      this.pause(record.id).catch((err: unknown) => {
        this.logger.error("timeout pause failed; retrying in a minute", { sandbox: record.id, err });
        if (this.entries.get(record.id) === entry && record.state === "running") {
          record.expiresAt = new Date(this.now().getTime() + 60_000).toISOString();
          this.armTimer(entry);
        }
      });
      return;
    }
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
      if (record.state === "paused") {
        // Paused: no VM by design. A crash mid-pause may have left the VMM and its slot.
        await this.releaseRuntime(entry).catch((err: unknown) =>
          this.logger.error("recovery cleanup failed", { sandbox: record.id, err }),
        );
        await this.deps.records.save(record);
        this.entries.set(record.id, entry);
        adopted.push(record.id);
        continue;
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

  /**
   * Pauses a running sandbox: envd quiesces, the vCPUs stop, the pages written since the
   * VM's last snapshot (all resident pages for a VM that never had one) and the device state
   * go to disk as a new generation, then the VMM exits and its slot and RAM are freed. The
   * disk layer stays. If saving fails the VM runs on and nothing of the snapshot is kept.
   */
  async pause(id: string): Promise<{ record: SandboxRecord; bytesWritten: number; generation: number }> {
    const entry = this.entry(id);
    return this.withLock(id, () => this.pauseLocked(entry));
  }

  private async pauseLocked(
    entry: SandboxEntry,
  ): Promise<{ record: SandboxRecord; bytesWritten: number; generation: number }> {
    const { record } = entry;
    const vm = entry.vm;
    const envd = entry.envd;
    if (record.state === "paused") {
      throw new WrennError("conflict", `sandbox ${record.id} is already paused`);
    }
    if (record.state !== "running" || !vm || !envd) {
      throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not running`);
    }
    const log = this.logger.child({ sandbox: record.id });
    const started = performance.now();
    this.clearTimer(entry);
    await envd.prepareSnapshot().catch((err: unknown) => log.warn("envd snapshot prepare failed", { err }));
    await vm.pauseVcpus();
    let written: Awaited<ReturnType<MemorySnapshotStore["writeGeneration"]>>;
    try {
      const memory = await vm.guestMemory();
      const pages = await selectPages(memory, record.memorySnapshot ? "private" : "resident");
      written = await this.withStorage(() =>
        this.deps.memory.writeGeneration({
          parent: record.memorySnapshot,
          memorySize: memory.sizeBytes,
          runs: readPages(memory, pages),
          saveDeviceState: (path) => vm.saveDeviceState(path),
        }),
      );
    } catch (err) {
      log.warn("pause failed; the sandbox keeps running", { err });
      await vm.resumeVcpus();
      // /snapshot/prepare stopped port forwarding; /init starts it again.
      await envd.init(this.initPayload(record, false)).catch(() => {});
      this.touch(entry);
      throw WrennError.from(err);
    }
    record.memorySnapshot = written.id;
    record.state = "paused";
    record.pausedAt = this.now().toISOString();
    await this.deps.records.save(record);
    entry.vm = undefined;
    entry.envd = undefined;
    envd.close(`sandbox ${record.id} was paused`);
    await vm.kill();
    await this.releaseRuntime(entry);
    await this.deps.records.save(record);
    log.info("sandbox paused", {
      ms: Math.round(performance.now() - started),
      generation: written.header.generation,
      bytesWritten: written.bytesWritten,
    });
    return { record, bytesWritten: written.bytesWritten, generation: written.header.generation };
  }

  /**
   * Brings a paused sandbox back in any free slot: its memory maps the snapshot lazily,
   * then envd gets the host's time, fresh entropy and the sandbox's env and token. A
   * snapshot that fails its checks marks the sandbox `error`.
   */
  async resume(id: string, timeoutSec?: number): Promise<SandboxRecord> {
    const entry = this.entry(id);
    return this.withLock(id, () => this.starts.run(() => this.resumeLocked(entry, timeoutSec)));
  }

  private async resumeLocked(entry: SandboxEntry, timeoutSec?: number): Promise<SandboxRecord> {
    const { record } = entry;
    if (record.state === "running") return record;
    if (record.state !== "paused" || !record.memorySnapshot) {
      throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not paused`);
    }
    if (timeoutSec) validateTimeout(timeoutSec, this.options.limits);
    this.admit(record.resources);
    const log = this.logger.child({ sandbox: record.id });
    const started = performance.now();
    const image = await this.deps.images.get(record.template);
    const undo = new UndoStack();
    try {
      const plan = await this.deps.memory.planRestore(record.memorySnapshot).catch(async (err: unknown) => {
        await this.markError(entry, err);
        throw err;
      });
      const network = await this.attachNetwork(entry, undo);
      await mkdir(record.runDir, { recursive: true });
      const vm = await this.deps.driver
        .restore(this.vmSpec(record, network, image), {
          memoryFile: plan.baseFile,
          deviceStateFile: plan.deviceStateFile,
          pages: plan.pages,
        })
        .catch(async (err: unknown) => {
          if (err instanceof WrennError && err.code === "snapshot_corrupt") {
            await undo.unwind(log);
            await this.markError(entry, err);
          }
          throw err;
        });
      entry.vm = vm;
      undo.push("vm", async () => {
        await vm.kill();
        entry.vm = undefined;
      });
      record.vmmPid = vm.pid;
      await this.deps.records.save(record);
      await vm.resumeVcpus();
      const envd = this.envdClient(record);
      await this.waitForEnvd(envd, vm, record);
      await this.initEnvd(envd, envd, record, true);
      entry.envd = envd;
      record.state = "running";
      record.pausedAt = undefined;
      if (timeoutSec) record.timeoutSec = timeoutSec;
      record.expiresAt = new Date(this.now().getTime() + record.timeoutSec * 1000).toISOString();
      await this.deps.records.save(record);
      undo.clear();
      this.watchExit(entry, vm);
      this.armTimer(entry);
      log.info("sandbox resumed", {
        ms: Math.round(performance.now() - started),
        slot: record.slot,
        injectedBytes: plan.injectedBytes,
      });
      return record;
    } catch (err) {
      await undo.unwind(log);
      if (record.state === "paused") {
        record.vmmPid = undefined;
        await this.deps.records.save(record).catch(() => {});
      }
      throw WrennError.from(err);
    }
  }

  async whilePaused<T>(
    id: string,
    resumeAfter: boolean,
    work: (record: PausedRecord) => Promise<T>,
  ): Promise<T> {
    const entry = this.entry(id);
    return this.withLock(id, async () => {
      const { record } = entry;
      const wasRunning = record.state === "running";
      if (wasRunning) await this.pauseLocked(entry);
      if (record.state !== "paused" || !record.memorySnapshot) {
        throw new WrennError(
          "failed_precondition",
          `sandbox ${id} is ${record.state}; only a running or paused sandbox can be snapshotted`,
        );
      }
      let result: T;
      try {
        result = await work(record as PausedRecord);
      } catch (err) {
        if (wasRunning) await this.resumeLocked(entry).catch(() => {});
        throw err;
      }
      if (wasRunning && resumeAfter) await this.resumeLocked(entry);
      return result;
    });
  }

  private async markError(entry: SandboxEntry, err: unknown): Promise<void> {
    const { record } = entry;
    record.state = "error";
    record.error = err instanceof Error ? err.message : String(err);
    await this.deps.records.save(record).catch(() => {});
    this.logger.error("sandbox cannot be restored", { sandbox: record.id, error: record.error });
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
      const ids = [...this.entries.keys()];
      const results = await Promise.allSettled(ids.map((id) => this.destroy(id)));
      results.forEach((result, i) => {
        if (result.status === "rejected") {
          this.logger.error("destroy on shutdown failed", { sandbox: ids[i], err: result.reason });
        }
      });
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
