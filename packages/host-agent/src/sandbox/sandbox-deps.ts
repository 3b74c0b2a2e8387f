import type { Logger } from "@wrenn/shared";
import type { HostMemoryProbe } from "../drivers-system/host-memory.js";
import type { EnvdClient } from "../envd-client/envd-client.js";
import type { ImageCatalog } from "../images/image-catalog.js";
import type { NetworkManager } from "../network/sandbox-network.js";
import type { ImageSnapshotCache } from "../snapshot/image-snapshot-cache.js";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import type { VmHandle, VmmDriver } from "../vmm/vmm-driver.js";
import type { HostCapacity, SandboxLimits } from "./sandbox-limits.js";
import type { SandboxRecord, SandboxRecordStore, SandboxResources } from "./sandbox-record.js";
import type { SnapshotStore } from "./snapshot-store.js";

/** Network slots, leased per sandbox and persisted so they survive an agent restart. */
export interface SlotLeases {
  acquire(owner: string): Promise<number>;
  release(slot: number): Promise<void>;
  /** Releases a slot and skips it for a while: something else on the host holds its addresses. */
  setAside(slot: number): Promise<void>;
}

/**
 * Which slot may mount which volumes (the volume server's export list). Granted before a
 * sandbox's vCPUs run, revoked when its slot is released.
 */
export interface SandboxVolumeAccess {
  grant(slot: number, address: string, volumeIds: readonly string[]): Promise<void>;
  revoke(slot: number): Promise<void>;
  /** The team owning a volume of this host; undefined when there is no such volume. */
  ownerOf(volumeId: string): string | undefined;
}

export interface SandboxManagerDeps {
  driver: VmmDriver;
  network: NetworkManager;
  slots: SlotLeases;
  disks: DiskLayerStore;
  images: ImageCatalog;
  records: SandboxRecordStore;
  memory: MemorySnapshotStore;
  /** Named (and fork-internal) snapshots. */
  snapshots: SnapshotStore;
  /** Volumes; undefined when they are off on this host (a create asking for one is refused). */
  volumes?: SandboxVolumeAccess | undefined;
  /** The host-wide image snapshot cache; undefined: this agent builds every image snapshot itself. */
  imageSnapshotCache?: ImageSnapshotCache | undefined;
  /** The host's available memory, for admission; absent: only the capacity budgets apply. */
  hostMemory?: HostMemoryProbe | undefined;
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
  /** The port envd answers on at a sandbox's host-reachable address; default ENVD_PORT. */
  envdPort?: number | undefined;
  /** Host-wide budget: the sum over running sandboxes may not exceed it. */
  capacity: HostCapacity;
  /** VM boots and restores running at once (the rest queue). */
  maxConcurrentStarts: number;
  /**
   * Creates from an image restore a snapshot of it (ImageSnapshots) instead of cold-booting;
   * default off here, on in the agent's config.
   */
  imageSnapshots?: boolean | undefined;
}

/** A sandbox as the manager holds it in memory: the record plus live handles. */
export interface SandboxEntry {
  record: SandboxRecord;
  vm: VmHandle | undefined;
  envd: EnvdClient | undefined;
  timer: NodeJS.Timeout | undefined;
}

export function newEntry(record: SandboxRecord): SandboxEntry {
  return { record, vm: undefined, envd: undefined, timer: undefined };
}
