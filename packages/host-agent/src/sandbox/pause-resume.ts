import { type Logger, WrennError } from "@wrenn/shared";
import type { ImageCatalog } from "../images/image-catalog.js";
import { readPages, selectPages } from "../snapshot/guest-memory.js";
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

export interface PauseResult {
  record: SandboxRecord;
  bytesWritten: number;
  generation: number;
}

/**
 * Pause (memory to a snapshot generation, VM and slot freed) and resume (the start sequence
 * from that snapshot) of one sandbox. Callers hold the sandbox's lock.
 */
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
    const vm = entry.vm;
    const envd = entry.envd;
    if (record.state === "paused") {
      throw new WrennError("conflict", `sandbox ${record.id} is already paused`);
    }
    if (record.state !== "running" || !vm || !envd) {
      throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not running`);
    }
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
      log.warn("pause failed; the sandbox keeps running", { err });
      await vm.resumeVcpus();
      // /snapshot/prepare stopped port forwarding; /init starts it again.
      await envd.init(deps.envd.payload(record, false)).catch(() => {});
      deps.timers.touch(entry);
      throw WrennError.from(err);
    }
    record.memorySnapshot = written.id;
    record.state = "paused";
    record.pausedAt = deps.now().toISOString();
    await deps.records.save(record);
    entry.vm = undefined;
    entry.envd = undefined;
    envd.close(`sandbox ${record.id} was paused`);
    await vm.kill();
    await releaseRuntime(deps.release, entry);
    await deps.records.save(record);
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
  async resume(entry: SandboxEntry, timeoutSec?: number): Promise<SandboxRecord> {
    const { record } = entry;
    if (record.state === "running") return record;
    if (record.state !== "paused" || !record.memorySnapshot) {
      throw new WrennError("failed_precondition", `sandbox ${record.id} is ${record.state}, not paused`);
    }
    if (timeoutSec) validateTimeout(timeoutSec, this.deps.limits);
    this.deps.admit(record.resources);
    const started = performance.now();
    const image = await this.deps.images.get(record.image);
    const { injectedBytes } = await this.deps.start.run(entry, {
      image,
      memorySnapshot: record.memorySnapshot,
      timeoutSec,
      onUnrestorable: (err) => this.markError(entry, err),
    });
    this.deps.logger.info("sandbox resumed", {
      sandbox: record.id,
      ms: Math.round(performance.now() - started),
      slot: record.slot,
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
