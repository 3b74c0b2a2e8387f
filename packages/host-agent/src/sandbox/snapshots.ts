import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, runLimited, WrennError } from "@wrenn/shared";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import type { CreateSandboxInput } from "./create-input.js";
import type { SandboxRecord, SandboxRecordStore, SandboxResources } from "./sandbox-record.js";
import {
  DISK_LAYER_FILE,
  type SnapshotRecord,
  type SnapshotStore,
  validateSnapshotName,
} from "./snapshot-store.js";

/** What snapshot operations need of the sandboxes on this host (the sandbox manager). */
export interface SandboxesPort {
  list(): SandboxRecord[];
  get(id: string): SandboxRecord;
  create(input: CreateSandboxInput): Promise<SandboxRecord>;
  destroy(id: string): Promise<void>;
  /**
   * Runs `work` under the sandbox's lock with it paused (a running one is paused first; a
   * sandbox neither running nor paused is refused). A sandbox that was running is resumed
   * afterwards when `resumeAfter`, and always when `work` fails.
   */
  whilePaused<T>(id: string, resumeAfter: boolean, work: (record: PausedRecord) => Promise<T>): Promise<T>;
}

/** A paused sandbox's record: it has a memory snapshot. */
export type PausedRecord = SandboxRecord & { memorySnapshot: string };

export interface SnapshotsDeps {
  store: SnapshotStore;
  disks: DiskLayerStore;
  memory: MemorySnapshotStore;
  records: SandboxRecordStore;
  logger: Logger;
  now: () => Date;
  /** Serialises snapshot writes and garbage collection of snapshot files. */
  withStorage<T>(fn: () => Promise<T>): Promise<T>;
  /** Memory snapshots held outside the registry (image snapshot builds in flight). */
  pinnedMemory?: (() => string[]) | undefined;
}

/**
 * Named snapshots: freezing a sandbox into a named snapshot (memory snapshot plus a
 * read-only disk layer), listing and deleting them, forking a running sandbox through a
 * hidden one, and collecting the files nothing reaches any more.
 */
export class Snapshots {
  constructor(
    private readonly deps: SnapshotsDeps,
    private readonly sandboxes: SandboxesPort,
  ) {}

  /** A snapshot by name; fork-internal (hidden) ones only for creating sandboxes. */
  live(name: string, includeHidden = false): SnapshotRecord {
    const snapshot = this.deps.store.byName(name);
    if (!snapshot || (snapshot.hidden && !includeHidden)) {
      throw new WrennError("not_found", `snapshot ${name} not found`);
    }
    return snapshot;
  }

  /** A snapshot's sizes are fixed by its frozen VM; a request may only repeat them (or grow the disk). */
  resourcesFor(snapshot: SnapshotRecord, requested: CreateSandboxInput["resources"]): SandboxResources {
    const t = snapshot.resources;
    if (requested?.vcpus !== undefined && requested.vcpus !== t.vcpus) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${snapshot.name} has ${t.vcpus} vCPUs; a sandbox from it cannot have ${requested.vcpus}`,
      );
    }
    if (requested?.memoryMiB !== undefined && requested.memoryMiB !== t.memoryMiB) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${snapshot.name} has ${t.memoryMiB} MiB of memory; a sandbox from it cannot have ${requested.memoryMiB}`,
      );
    }
    if (requested?.diskMiB !== undefined && requested.diskMiB < t.diskMiB) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${snapshot.name} has a ${t.diskMiB} MiB disk; a sandbox from it cannot have less`,
      );
    }
    return { vcpus: t.vcpus, memoryMiB: t.memoryMiB, diskMiB: requested?.diskMiB ?? t.diskMiB };
  }

  /**
   * Freezes a sandbox into a named snapshot: pauses it if running, turns its disk
   * layer into the snapshot's read-only layer (the sandbox continues on a new layer on
   * top), and records the memory snapshot. A sandbox that was running is resumed unless
   * `leavePaused`.
   */
  async create(
    id: string,
    name: string,
    options: { leavePaused?: boolean; hidden?: boolean } = {},
  ): Promise<{ snapshot: SnapshotRecord; record: SandboxRecord }> {
    validateSnapshotName(name);
    const taken = () => {
      if (this.deps.store.byName(name)) {
        throw new WrennError("already_exists", `snapshot ${name} already exists`);
      }
    };
    taken();
    return this.sandboxes.whilePaused(id, !options.leavePaused, async (record) => {
      taken();
      const store = this.deps.store;
      const snapshotId = store.newId();
      const dir = store.dirFor(snapshotId);
      const diskPath = join(dir, DISK_LAYER_FILE);
      const overlay = this.deps.disks.overlayPath(id);
      await mkdir(dir, { recursive: true });
      const snapshot: SnapshotRecord = {
        id: snapshotId,
        name,
        hidden: options.hidden ?? false,
        deleted: false,
        sourceSandboxId: id,
        image: record.image,
        resources: { ...record.resources },
        createdAt: this.deps.now().toISOString(),
        memorySnapshot: record.memorySnapshot,
        diskPath,
        envdAccessToken: record.envdAccessToken,
        defaultUser: record.defaultUser,
        defaultWorkdir: record.defaultWorkdir,
        dependsOn: [...(record.dependsOn ?? [])],
        ...(record.networkPolicy ? { networkPolicy: record.networkPolicy } : {}),
        ...(record.volumeMounts?.length ? { volumeMounts: record.volumeMounts.map((m) => ({ ...m })) } : {}),
      };
      try {
        await rename(overlay, diskPath);
        await chmod(diskPath, 0o444);
        try {
          record.overlayPath = await this.deps.disks.createOverlay(id, diskPath, record.resources.diskMiB, {
            baseFormat: "qcow2",
          });
          await store.save(snapshot);
        } catch (err) {
          await this.deps.disks.removeOverlay(id);
          await chmod(diskPath, 0o600);
          await rename(diskPath, overlay);
          record.overlayPath = overlay;
          throw err;
        }
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw WrennError.from(err);
      }
      record.dependsOn = [...(record.dependsOn ?? []), snapshotId];
      await this.deps.records.save(record);
      this.deps.logger.info("snapshot created", { sandbox: id, name, snapshot: snapshotId });
      return { snapshot, record };
    });
  }

  /** Live snapshots (not deleted, not fork-internal) and the sandboxes that depend on each. */
  list(): Array<{ snapshot: SnapshotRecord; dependents: string[] }> {
    return this.deps.store
      .all()
      .filter((t) => !t.deleted && !t.hidden)
      .map((snapshot) => ({ snapshot, dependents: this.dependentsOf(snapshot.id) }))
      .sort((a, b) => a.snapshot.createdAt.localeCompare(b.snapshot.createdAt));
  }

  private dependentsOf(snapshotId: string): string[] {
    return this.sandboxes
      .list()
      .filter((r) => r.state !== "stopped" && r.dependsOn?.includes(snapshotId))
      .map((r) => r.id);
  }

  /**
   * Deletes a snapshot by name. Refused while sandboxes depend on it unless `force`; then the
   * name goes at once and the files when the last dependent is gone.
   */
  async delete(name: string, force = false): Promise<void> {
    const snapshot = this.live(name);
    const dependents = this.dependentsOf(snapshot.id);
    if (dependents.length > 0 && !force) {
      throw new WrennError(
        "failed_precondition",
        `snapshot ${name} is in use by ${dependents.length} sandbox(es): ${dependents.slice(0, 5).join(", ")}; delete them first or force`,
      );
    }
    await this.deps.store.save({ ...snapshot, deleted: true, name: "" });
    this.deps.logger.info("snapshot deleted", {
      name,
      snapshot: snapshot.id,
      dependents: dependents.length,
    });
    await this.collectGarbage();
  }

  /** `count` new sandboxes from the current state of a running one, which keeps running. */
  async fork(
    id: string,
    count: number,
    metadata: Record<string, string> = {},
    envdAccessTokens: readonly string[] = [],
  ): Promise<SandboxRecord[]> {
    if (!Number.isInteger(count) || count < 1 || count > 100) {
      throw new WrennError("invalid_argument", `fork count must be 1..100, got ${count}`);
    }
    if (envdAccessTokens.length > 0 && envdAccessTokens.length !== count) {
      throw new WrennError(
        "invalid_argument",
        `fork of ${count} needs ${count} envd access tokens or none, got ${envdAccessTokens.length}`,
      );
    }
    const source = this.sandboxes.get(id);
    if (source.state !== "running") {
      throw new WrennError("failed_precondition", `sandbox ${id} is ${source.state}, not running`);
    }
    const name = `fork-${id}-${randomBytes(4).toString("hex")}`;
    const { snapshot } = await this.create(id, name, { hidden: true });
    // In the order asked, so the caller can pair forks with the tokens it gave.
    const forks: (SandboxRecord | undefined)[] = Array.from({ length: count }, () => undefined);
    try {
      // Four at a time; after a failure no new fork starts, so the cleanup below sees them all.
      await runLimited(count, 4, async (i) => {
        forks[i] = await this.sandboxes.create({
          image: source.image,
          snapshot: name,
          timeoutSec: source.timeoutSec,
          timeoutAction: source.timeoutAction,
          envVars: source.envVars,
          metadata: { ...source.metadata, ...metadata },
          defaultUser: source.defaultUser,
          defaultWorkdir: source.defaultWorkdir,
          envdAccessToken: envdAccessTokens[i],
          // A fork belongs to its source's owner: the source's volumes are its own.
          inheritVolumes: "all",
        });
      });
    } catch (err) {
      await Promise.allSettled(forks.map((f) => (f ? this.sandboxes.destroy(f.id) : undefined)));
      throw WrennError.from(err);
    } finally {
      await this.deps.store.save({ ...snapshot, deleted: true, name: "" });
      await this.collectGarbage();
    }
    return forks.filter((f): f is SandboxRecord => f !== undefined);
  }

  /**
   * Removes deleted snapshots nothing depends on any more, then every memory file no
   * sandbox or snapshot reaches.
   */
  async collectGarbage(): Promise<void> {
    await this.deps.withStorage(async () => {
      const records = this.sandboxes.list();
      for (const t of this.deps.store.all()) {
        if (!t.deleted) continue;
        const needed =
          records.some((r) => r.dependsOn?.includes(t.id)) ||
          this.deps.store.all().some((o) => o.id !== t.id && o.dependsOn.includes(t.id));
        if (!needed) await this.deps.store.remove(t.id);
      }
      const live = [
        ...records.map((r) => r.memorySnapshot),
        ...this.deps.store.all().map((t) => t.memorySnapshot),
        ...(this.deps.pinnedMemory?.() ?? []),
      ].filter((s): s is string => s !== undefined);
      const removed = await this.deps.memory.collectGarbage(live);
      if (removed.length > 0) this.deps.logger.info("snapshot files collected", { files: removed.length });
    });
  }
}
