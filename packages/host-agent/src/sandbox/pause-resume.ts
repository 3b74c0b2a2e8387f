import { type Logger, WrennError } from "@wrenn/shared";
import type { ImageCatalog } from "../images/image-catalog.js";
import { readPages, selectPages } from "../snapshot/guest-memory.js";
import { storageError } from "../snapshot/memory-files.js";
import type { MemorySnapshotStore, WrittenGeneration } from "../snapshot/memory-store.js";
import type { EnvdConnector } from "./envd-connector.js";
import { clearTimer, type InactivityTimers } from "./inactivity-timers.js";
import type { SandboxEntry } from "./sandbox-deps.js";
import { type SandboxLimits, validateTimeout } from "./sandbox-limits.js";
import type { SandboxRecord, SandboxRecordStore, SandboxResources } from "./sandbox-record.js";
import { type ReleaseDeps, releaseRuntime } from "./sandbox-release.js";
import type { StartSequence } from "./start-sequence.js";

export interface PauseResumeDeps {
  memory: MemorySnapshotStore;
  records: SandboxRecordStore;
  images: ImageCatalog;
  release: ReleaseDeps;
  envd: EnvdConnector;
  timers: InactivityTimers;
  start: StartSequence;
  logger: Logger;
  now: () => Date;
  limits: SandboxLimits;
  /** Refuses with no_capacity when the host cannot run these resources now. */
  admit(resources: SandboxResources): void;
  /** Serialises snapshot writes and garbage collection of snapshot files. */
  withStorage<T>(fn: () => Promise<T>): Promise<T>;
}

/** How long the guest's `sync` may take before a filesystem-only pause goes on without it. */
const SYNC_TIMEOUT_MS = 60_000;
/** How long QEMU may take to quit cleanly before it is killed. */
const STOP_TIMEOUT_MS = 10_000;

export interface ResumeOptions {
  /** Cold-boot from the disk layer even when the pause kept memory. */
  reboot?: boolean | undefined;
}

export interface PauseResult {
  record: SandboxRecord;
  /** 0 for a pause without memory. */
  bytesWritten: number;
  generation: number;
}

/**
 * Pause (memory to a snapshot generation, VM and slot freed) and resume (the start sequence
 * from that snapshot) of one sandbox. Callers hold the sandbox's lock.
 */
/** A sandbox to pause: running, with its VM and envd client (else why not). */
function runningParts(entry: SandboxEntry): {
  vm: NonNullable<SandboxEntry["vm"]>;
  envd: NonNullable<SandboxEntry["envd"]>;
} {
  const { record, vm, envd } = entry;
  if (record.state === "paused") throw new WrennError("conflict", `sandbox ${record.id} is already paused`);
  if (record.state !== "running" || !vm || !envd) {
    throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not running`);
  }
  return { vm, envd };
}

export class PauseResume {
  constructor(private readonly deps: PauseResumeDeps) {}

  /**
   * Pauses a running sandbox: envd quiesces, the vCPUs stop, the pages written since the
   * VM's last snapshot (all resident pages for a VM that never had one) and the device state
   * go to disk as a new generation, then the VMM exits and its slot and RAM are freed. The
   * disk layer stays. If saving fails the VM runs on and nothing of the snapshot is kept.
   */
  async pause(entry: SandboxEntry): Promise<PauseResult> {
    const { deps } = this;
    const { record } = entry;
    const { vm, envd } = runningParts(entry);
    const log = deps.logger.child({ sandbox: record.id });
    const started = performance.now();
    clearTimer(entry);
    await envd.prepareSnapshot().catch((err: unknown) => log.warn("envd snapshot prepare failed", { err }));
    await vm.pauseVcpus();
    let written: WrittenGeneration;
    try {
      const memory = await vm.guestMemory();
      const pages = await selectPages(memory, record.memorySnapshot ? "private" : "resident");
      written = await deps.withStorage(() =>
        deps.memory.writeGeneration({
          parent: record.memorySnapshot,
          memorySize: memory.sizeBytes,
          runs: readPages(memory, pages),
          saveDeviceState: (path) => vm.saveDeviceState(path),
        }),
      );
    } catch (err) {
      throw await this.keepRunning(entry, err);
    }
    const before = { memorySnapshot: record.memorySnapshot, pausedAt: record.pausedAt };
    record.memorySnapshot = written.id;
    record.state = "paused";
    record.pausedAt = deps.now().toISOString();
    try {
      await deps.records.save(record);
    } catch (err) {
      // The record still says running on disk (a full disk, say): the VM goes on as it was and
      // the generation nothing will refer to goes.
      Object.assign(record, before, { state: "running" });
      await deps.withStorage(() => deps.memory.discard(written.id)).catch(() => {});
      throw await this.keepRunning(entry, storageError(`save the record of sandbox ${record.id}`, err));
    }
    entry.vm = undefined;
    entry.envd = undefined;
    envd.close(`sandbox ${record.id} was paused`);
    await vm.kill();
    await releaseRuntime(deps.release, entry);
    // The pause stands either way: a restart finds the record paused and frees what it names.
    await deps.records
      .save(record)
      .catch((err: unknown) => log.warn("record not updated after pause", { err }));
    log.info("sandbox paused", {
      ms: Math.round(performance.now() - started),
      generation: written.header.generation,
      bytesWritten: written.bytesWritten,
    });
    return { record, bytesWritten: written.bytesWritten, generation: written.header.generation };
  }

  /** After a pause that failed: the vCPUs run again, envd forwards ports again; returns the error. */
  private async keepRunning(entry: SandboxEntry, err: unknown): Promise<WrennError> {
    const { record, vm, envd } = entry;
    this.deps.logger.warn("pause failed; the sandbox keeps running", { sandbox: record.id, err });
    await vm?.resumeVcpus();
    // /snapshot/prepare stopped port forwarding; /init starts it again.
    await envd?.init(this.deps.envd.payload(record, false)).catch(() => {});
    this.deps.timers.touch(entry);
    return WrennError.from(err);
  }

  /**
   * Pauses a running sandbox keeping only its disk layer: the guest syncs its file systems
   * (a `sync` process through envd, so what was written before is on the disk), then the
   * VMM quits and its slot and RAM are freed. No memory is written; a resume cold-boots.
   * A failed sync does not stop the pause: the disk then has crash-recovery semantics.
   */
  async pauseWithoutMemory(entry: SandboxEntry): Promise<PauseResult> {
    const { deps } = this;
    const { record } = entry;
    const { vm, envd } = runningParts(entry);
    const log = deps.logger.child({ sandbox: record.id });
    const started = performance.now();
    clearTimer(entry);
    const guest = envd.guest(record.envdAccessToken);
    const synced = await guest
      .exec({ command: "sync" }, { timeoutMs: SYNC_TIMEOUT_MS })
      .then((r) => r.exitCode === 0 || `exit code ${r.exitCode}`)
      .catch((err: unknown) => (err instanceof Error ? err.message : String(err)));
    if (synced !== true) log.warn("guest sync before a filesystem-only pause failed", { error: synced });
    record.state = "paused";
    record.pausedWithoutMemory = true;
    // The next start is a cold boot: no memory snapshot is its parent.
    record.memorySnapshot = undefined;
    record.pausedAt = deps.now().toISOString();
    await deps.records.save(record);
    entry.vm = undefined;
    entry.envd = undefined;
    envd.close(`sandbox ${record.id} was paused`);
    // A clean QMP quit: QEMU flushes its disk caches before it exits.
    await vm.stop(STOP_TIMEOUT_MS);
    await releaseRuntime(deps.release, entry);
    await deps.records.save(record);
    log.info("sandbox paused without memory", { ms: Math.round(performance.now() - started) });
    return { record, bytesWritten: 0, generation: 0 };
  }

  /**
   * Brings a paused sandbox back in any free slot. Paused with memory (and no `reboot`): its
   * memory maps the snapshot lazily, then envd gets the host's time, fresh entropy and the
   * sandbox's env and token; a snapshot that fails its checks marks the sandbox `error`.
   * Paused without memory, or with `reboot`: the image's kernel cold-boots over the disk
   * layer (processes that ran before are gone), and the memory snapshot is let go.
   */
  async resume(
    entry: SandboxEntry,
    timeoutSec?: number,
    options: ResumeOptions = {},
  ): Promise<SandboxRecord> {
    const { record } = entry;
    if (record.state === "running") return record;
    const boot = record.pausedWithoutMemory === true || options.reboot === true;
    if (record.state !== "paused" || (!boot && !record.memorySnapshot)) {
      throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not paused`);
    }
    if (timeoutSec) validateTimeout(timeoutSec, this.deps.limits);
    this.deps.admit(record.resources);
    const started = performance.now();
    const image = await this.deps.images.get(record.image);
    const { injectedBytes } = await this.deps.start.run(entry, {
      image,
      memorySnapshot: boot ? undefined : record.memorySnapshot,
      timeoutSec,
      onUnrestorable: (err) => this.markError(entry, err),
    });
    if (boot) {
      record.pausedWithoutMemory = undefined;
      record.memorySnapshot = undefined;
      await this.deps.records.save(record);
    }
    this.deps.logger.info("sandbox resumed", {
      sandbox: record.id,
      ms: Math.round(performance.now() - started),
      slot: record.slot,
      booted: boot,
      injectedBytes,
    });
    return record;
  }

  private async markError(entry: SandboxEntry, err: unknown): Promise<void> {
    const { record } = entry;
    record.state = "error";
    record.error = err instanceof Error ? err.message : String(err);
    await this.deps.records.save(record).catch(() => {});
    this.deps.logger.error("sandbox cannot be restored", { sandbox: record.id, error: record.error });
  }
}
