import { join } from "node:path";
import { type Logger, newSandboxId, WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { EnvdClient } from "../envd-client/envd-client.js";
import type { VmExit, VmHandle } from "../vmm/vmm-driver.js";
import { type CreateSandboxInput, createSettings, newSandboxRecord } from "./create-input.js";
import type { ImageSnapshots } from "./image-snapshots.js";
import { clearTimer } from "./inactivity-timers.js";
import { replaceNetworkPolicy } from "./network-policy-update.js";
import type { PauseResult, ResumeOptions } from "./pause-resume.js";
import {
  newEntry,
  type SandboxEntry,
  type SandboxManagerDeps,
  type SandboxManagerOptions,
} from "./sandbox-deps.js";
import { admitStart, allocatedResources, validateTimeout } from "./sandbox-limits.js";
import { createSandboxManagerParts, type SandboxManagerParts } from "./sandbox-manager-parts.js";
import type { SandboxRecord, SandboxResources, SandboxStateName } from "./sandbox-record.js";
import { recoverSandboxes } from "./sandbox-recovery.js";
import { releaseVmResources } from "./sandbox-release.js";
import type { PausedRecord, SandboxesPort, Snapshots } from "./snapshots.js";
import { newSandboxVolumeMounts } from "./volume-inheritance.js";

export type { SandboxEntry, SandboxManagerDeps, SandboxManagerOptions, SlotLeases } from "./sandbox-deps.js";

const ID_RE = /^[a-z0-9][a-z0-9-]{2,62}$/;

/**
 * Every sandbox on this host: the registry (in-memory state is the truth; records on disk back
 * it up), one lock per sandbox serialising its lifecycle operations, and admission against the
 * host's capacity. Starting a VM is the StartSequence's job, pause/resume PauseResume's, the
 * inactivity timeout InactivityTimers', and re-adoption after a restart recoverSandboxes'
 * (createSandboxManagerParts wires them).
 */
export class SandboxManager implements SandboxesPort {
  /** Named snapshots and fork (they call back into this manager through SandboxesPort). */
  readonly snapshots: Snapshots;
  /** Snapshots of images every create from an image restores; absent when turned off. */
  readonly imageSnapshots: ImageSnapshots | undefined;
  private readonly entries = new Map<string, SandboxEntry>();
  /** Serialises lifecycle operations per sandbox. */
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly now: () => Date;
  private closed = false;
  /** Snapshot writes and garbage collection of snapshot files never overlap. */
  private storage: Promise<unknown> = Promise.resolve();
  private readonly parts: SandboxManagerParts;

  constructor(
    private readonly deps: SandboxManagerDeps,
    private readonly options: SandboxManagerOptions,
  ) {
    this.now = deps.now ?? (() => new Date());
    this.parts = createSandboxManagerParts(deps, options, {
      now: this.now,
      pause: (id, keepMemory) => this.pause(id, { keepMemory }),
      destroy: (id) => this.destroy(id),
      stillRunning: (entry) =>
        this.entries.get(entry.record.id) === entry && entry.record.state === "running",
      watchExit: (entry, vm) => this.watchExit(entry, vm),
      admit: (resources) => this.admit(resources),
      withStorage: (fn) => this.withStorage(fn),
      sandboxes: this,
    });
    this.snapshots = this.parts.snapshots;
    this.imageSnapshots = this.parts.imageSnapshots;
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
  allocated(): SandboxResources {
    return allocatedResources(this.list());
  }

  private admit(resources: SandboxResources): void {
    admitStart(this.allocated(), this.options.capacity, resources, this.deps.hostMemory?.availableMiB());
  }

  /**
   * The envd client of a running sandbox; marks activity (extends its inactivity timeout)
   * unless `activity` is false: observing a sandbox (metrics sampling) is not using it.
   */
  envdFor(id: string, activity = true): EnvdClient {
    const entry = this.entry(id);
    if (entry.record.state !== "running" || !entry.envd) {
      throw new WrennError("failed_precondition", `sandbox ${id} is ${entry.record.state}, not running`);
    }
    if (activity) this.parts.timers.touch(entry);
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
    const { defaults } = this.options;
    const { resources, timeoutSec, envVars } = createSettings(
      input,
      this.options,
      source && ((requested) => this.snapshots.resourcesFor(source, requested)),
    );
    const imageName = source ? source.image : input.image;
    const image = await this.deps.images.get(imageName);
    // A create from an image restores the image's snapshot (waiting for its build if need be).
    const imageSnapshot = source ? undefined : await this.imageSnapshots?.ready(image, resources);
    if (this.closed) throw new WrennError("unavailable", "host agent is shutting down");
    if (this.entries.has(id)) throw new WrennError("already_exists", `sandbox ${id} already exists`);
    const from = source ?? imageSnapshot;
    this.admit(resources);
    const volumeMounts = newSandboxVolumeMounts({
      id,
      input,
      source,
      volumes: this.deps.volumes,
      logger: this.logger,
    });

    const record = newSandboxRecord({
      id,
      input,
      image: imageName,
      resources,
      timeoutSec,
      envVars,
      source: from,
      fromImageSnapshot: imageSnapshot !== undefined,
      defaultUser: defaults.user,
      runDir: join(this.deps.records.dirFor(id), "run"),
      createdAt: this.now(),
      volumeMounts,
    });
    const entry = newEntry(record);
    this.entries.set(id, entry);

    return this.withLock(id, () =>
      this.parts.starts.run(async () => {
        let stepMs: Record<string, number> = {};
        try {
          ({ stepMs } = await this.parts.start.run(entry, {
            image,
            memorySnapshot: from?.memorySnapshot,
            create: {
              ...(from
                ? { diskBasePath: from.diskPath, diskBaseFormat: "qcow2" }
                : { diskBasePath: image.rootfsPath }),
              mountVolumes: input.volumeMounts,
            },
            guestToken: from?.envdAccessToken,
            // An image snapshot that cannot be restored goes (here and in the host cache): the next create rebuilds it.
            onUnrestorable:
              imageSnapshot && (() => this.imageSnapshots?.discard(imageSnapshot) ?? Promise.resolve()),
          }));
        } catch (err) {
          this.entries.delete(id);
          throw err;
        }
        this.logger.info("sandbox running", {
          sandbox: id,
          slot: record.slot,
          pid: entry.vm?.pid,
          image: record.image,
          snapshot: input.snapshot,
          restored: from !== undefined,
          stepMs,
        });
        return record;
      }),
    );
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
      await releaseVmResources(this.parts.release, entry);
      record.state = "error";
      record.error = reason;
      await this.deps.records.save(record).catch(() => {});
    });
  }

  async destroy(id: string): Promise<void> {
    const entry = this.entry(id);
    await this.withLock(id, async () => {
      if (!this.entries.has(id)) return;
      await releaseVmResources(this.parts.release, entry);
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
    if (entry.record.state === "running") this.parts.timers.touch(entry);
    return entry.record;
  }

  /**
   * After an agent restart: re-adopt VMs that still run, clean up after the rest.
   * Returns the ids of sandboxes it kept.
   */
  recover(): Promise<{ adopted: string[]; cleaned: string[] }> {
    return recoverSandboxes({
      driver: this.deps.driver,
      images: this.deps.images,
      records: this.deps.records,
      release: this.parts.release,
      envd: this.parts.envd,
      timers: this.parts.timers,
      logger: this.logger,
      register: (entry) => this.entries.set(entry.record.id, entry),
      watchExit: (entry, vm) => this.watchExit(entry, vm),
    });
  }

  /**
   * Pauses a running sandbox into a memory snapshot (see PauseResume.pause), or with
   * `keepMemory: false` keeping only its disk (PauseResume.pauseWithoutMemory).
   */
  async pause(id: string, options: { keepMemory?: boolean | undefined } = {}): Promise<PauseResult> {
    const entry = this.entry(id);
    if (options.keepMemory !== false) return this.withLock(id, () => this.parts.pauses.pause(entry));
    const held = entry.record.memorySnapshot;
    const result = await this.withLock(id, () => this.parts.pauses.pauseWithoutMemory(entry));
    if (held) await this.snapshots.collectGarbage();
    return result;
  }

  /**
   * Brings a paused sandbox back (see PauseResume.resume); a running one is returned as it is.
   * `reboot` cold-boots from the disk even when the pause kept memory.
   */
  async resume(id: string, timeoutSec?: number, options: ResumeOptions = {}): Promise<SandboxRecord> {
    const entry = this.entry(id);
    const held = entry.record.memorySnapshot;
    const record = await this.withLock(id, () =>
      this.parts.starts.run(() => this.parts.pauses.resume(entry, timeoutSec, options)),
    );
    if (held && !record.memorySnapshot) await this.snapshots.collectGarbage();
    return record;
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
      if (wasRunning) await this.parts.pauses.pause(entry);
      if (record.state !== "paused" || !record.memorySnapshot) {
        throw new WrennError(
          "failed_precondition",
          record.pausedWithoutMemory
            ? `sandbox ${id} is paused without memory; resume it before taking a snapshot`
            : `sandbox ${id} is ${record.state}; only a running or paused sandbox can be snapshotted`,
        );
      }
      let result: T;
      try {
        result = await work(record as PausedRecord);
      } catch (err) {
        if (wasRunning) await this.parts.pauses.resume(entry).catch(() => {});
        throw err;
      }
      if (wasRunning && resumeAfter) await this.parts.pauses.resume(entry);
      return result;
    });
  }

  /**
   * Replaces a sandbox's egress policy: a running one's rules are swapped in place (no
   * restart), a paused one's is stored and applied when it resumes.
   */
  async updateNetworkPolicy(id: string, policy: NetworkPolicy): Promise<SandboxRecord> {
    const entry = this.entry(id);
    return this.withLock(id, async () => {
      const { record } = entry;
      await replaceNetworkPolicy(this.deps, record, policy);
      this.logger.info("network policy updated", { sandbox: id, state: record.state });
      return record;
    });
  }

  /** Slots held by sandboxes this manager knows about (the rest may be swept). */
  slotsInUse(): Set<number> {
    const slots = new Set<number>();
    for (const { record } of this.entries.values()) if (record.slot !== undefined) slots.add(record.slot);
    return slots;
  }

  /** Stops timers; with destroyAll, destroys every sandbox, else leaves VMs running for re-adoption. */
  async close(options: { destroyAll: boolean }): Promise<void> {
    await this.imageSnapshots?.close();
    for (const entry of this.entries.values()) clearTimer(entry);
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
