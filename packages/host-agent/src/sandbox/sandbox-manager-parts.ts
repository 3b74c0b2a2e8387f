import { join } from "node:path";
import type { VmHandle } from "../vmm/vmm-driver.js";
import { EnvdConnector } from "./envd-connector.js";
import { ImageSnapshots } from "./image-snapshots.js";
import { InactivityTimers, type TimeoutActions } from "./inactivity-timers.js";
import { PauseResume } from "./pause-resume.js";
import type { SandboxEntry, SandboxManagerDeps, SandboxManagerOptions } from "./sandbox-deps.js";
import type { SandboxResources } from "./sandbox-record.js";
import type { ReleaseDeps } from "./sandbox-release.js";
import { type SandboxesPort, Snapshots } from "./snapshots.js";
import { StartGate } from "./start-gate.js";
import { StartSequence } from "./start-sequence.js";

/** The collaborators SandboxManager delegates to, wired to each other. */
export interface SandboxManagerParts {
  /** VM boots and restores running at once (the rest queue). */
  starts: StartGate;
  release: ReleaseDeps;
  envd: EnvdConnector;
  timers: InactivityTimers;
  start: StartSequence;
  pauses: PauseResume;
  /** Named snapshots and fork (they call back into the manager through SandboxesPort). */
  snapshots: Snapshots;
  /** Snapshots of images every create from an image restores; absent when turned off. */
  imageSnapshots: ImageSnapshots | undefined;
}

/** What the parts call back into the manager for: its registry, lock, admission and storage queue. */
export interface SandboxManagerHooks extends TimeoutActions {
  now: () => Date;
  /** Starts watching a running VM for an exit nobody asked for. */
  watchExit(entry: SandboxEntry, vm: VmHandle): void;
  /** Refuses with no_capacity when the host cannot run these resources now. */
  admit(resources: SandboxResources): void;
  /** Serialises snapshot writes and garbage collection of snapshot files. */
  withStorage<T>(fn: () => Promise<T>): Promise<T>;
  /** The manager itself, as snapshots and fork reach sandboxes. */
  sandboxes: SandboxesPort;
}

/** Builds the manager's collaborators over its deps; constructors only, no I/O. */
export function createSandboxManagerParts(
  deps: SandboxManagerDeps,
  options: SandboxManagerOptions,
  hooks: SandboxManagerHooks,
): SandboxManagerParts {
  const { logger } = deps;
  const { now } = hooks;
  const starts = new StartGate(options.maxConcurrentStarts);
  const release: ReleaseDeps = {
    network: deps.network,
    slots: deps.slots,
    disks: deps.disks,
    volumes: deps.volumes,
    logger,
  };
  const envd = new EnvdConnector({
    readyTimeoutMs: options.envdReadyTimeoutMs,
    pollIntervalMs: options.envdPollIntervalMs,
    requestTimeoutMs: options.envdRequestTimeoutMs,
    port: options.envdPort,
    logger,
    now,
  });
  const timers = new InactivityTimers(now, logger, {
    pause: (id, keepMemory) => hooks.pause(id, keepMemory),
    destroy: (id) => hooks.destroy(id),
    stillRunning: (entry) => hooks.stillRunning(entry),
  });
  const start = new StartSequence({
    ...deps,
    envd,
    timers,
    now,
    watchExit: (entry, vm) => hooks.watchExit(entry, vm),
  });
  const pauses = new PauseResume({
    memory: deps.memory,
    records: deps.records,
    images: deps.images,
    release,
    envd,
    timers,
    start,
    logger,
    now,
    limits: options.limits,
    admit: (resources) => hooks.admit(resources),
    withStorage: (fn) => hooks.withStorage(fn),
  });
  const snapshots: Snapshots = new Snapshots(
    {
      store: deps.snapshots,
      disks: deps.disks,
      memory: deps.memory,
      records: deps.records,
      logger,
      now,
      withStorage: (fn) => hooks.withStorage(fn),
      pinnedMemory: () => imageSnapshots?.pinnedMemory() ?? [],
    },
    hooks.sandboxes,
  );
  const imageSnapshots: ImageSnapshots | undefined = options.imageSnapshots
    ? new ImageSnapshots({
        store: deps.snapshots,
        records: deps.records,
        start,
        pauses,
        starts,
        release,
        logger,
        now,
        bootProfile: deps.driver.bootProfile,
        defaults: options.defaults,
        runDirFor: (id) => join(deps.records.dirFor(id), "run"),
        admit: (resources) => hooks.admit(resources),
        collectGarbage: () => snapshots.collectGarbage(),
        cache: deps.imageSnapshotCache,
        memory: deps.memory,
      })
    : undefined;
  return { starts, release, envd, timers, start, pauses, snapshots, imageSnapshots };
}
