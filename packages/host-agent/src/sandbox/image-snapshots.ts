import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import type { GuestImage } from "../images/image-catalog.js";
import type { ImageSnapshotCache } from "../snapshot/image-snapshot-cache.js";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import { newSandboxRecord } from "./create-input.js";
import { ImageSnapshotSharing } from "./image-snapshot-sharing.js";
import { clearTimer } from "./inactivity-timers.js";
import type { PauseResume } from "./pause-resume.js";
import { newEntry, type SandboxEntry } from "./sandbox-deps.js";
import type { SandboxRecordStore, SandboxResources } from "./sandbox-record.js";
import { type ReleaseDeps, releaseVmResources } from "./sandbox-release.js";
import { DISK_LAYER_FILE, type SnapshotRecord, type SnapshotStore } from "./snapshot-store.js";
import type { StartGate } from "./start-gate.js";
import type { StartSequence } from "./start-sequence.js";

const MIB = 1024 * 1024;
const WARM_UP_RUNS = 3;

export interface ImageSnapshotsDeps {
  store: SnapshotStore;
  records: SandboxRecordStore;
  start: StartSequence;
  pauses: PauseResume;
  starts: StartGate;
  release: ReleaseDeps;
  logger: Logger;
  now: () => Date;
  /**
   * The driver's boot profile (accelerator and guest kernel arguments): a snapshot taken
   * under one does not restore under another accelerator, nor holds a kernel booted otherwise.
   */
  bootProfile: string;
  defaults: { timeoutSec: number; user: string };
  runDirFor(id: string): string;
  /** Refuses with no_capacity when the host cannot run these resources now. */
  admit(resources: SandboxResources): void;
  /** Removes deleted snapshots nothing needs and memory files nothing reaches. */
  collectGarbage(): Promise<void>;
  /** The host-wide cache: a snapshot another agent built is taken instead of cold-booting. */
  cache?: ImageSnapshotCache | undefined;
  memory: MemorySnapshotStore;
}

export type ImageSizes = Pick<SandboxResources, "vcpus" | "memoryMiB">;

/** The build of an image: its manifest's hash, else its content-addressed directory's name. */
export function imageBuildOf(image: Pick<GuestImage, "dir" | "manifest">): string {
  const hash = image.manifest.hash;
  return typeof hash === "string" && hash !== "" ? hash : basename(image.dir);
}

/** One image snapshot per image build, VM size and boot profile (accelerator, kernel arguments). */
export function imageSnapshotKey(
  image: string,
  build: string,
  sizes: ImageSizes,
  bootProfile: string,
): string {
  return `${image}-${build}-${sizes.vcpus}c-${sizes.memoryMiB}m-${bootProfile}`;
}

/** The image's root disk size in MiB (a sandbox's disk layer may be larger, never smaller). */
export async function imageDiskMiB(image: Pick<GuestImage, "rootfsPath">): Promise<number> {
  return Math.ceil((await stat(image.rootfsPath)).size / MIB);
}

/**
 * Image snapshots: for each image build, VM size and accelerator, a hidden snapshot of a VM
 * cold-booted from the image up to a ready envd, holding nothing of any user (no env vars,
 * no metadata, a token nobody is given). Creates from an image restore it instead of booting.
 * The first create for a key builds it (one build per key; every create asking meanwhile
 * waits for that build); a failed build leaves nothing, fails its waiters, and the next
 * create tries again. With the host-wide cache (ImageSnapshotSharing) a build first takes
 * the snapshot another agent on the host made, and publishes the one it cold-boots. A
 * snapshot of an older build of the image is deleted once a newer one is ready and goes when
 * no sandbox depends on it.
 */
export class ImageSnapshots {
  private readonly building = new Map<string, Promise<SnapshotRecord>>();
  /** Build VMs: not in the sandbox registry (never listed, never adopted after a restart). */
  private readonly builders = new Set<SandboxEntry>();
  private closed = false;
  private readonly sharing: ImageSnapshotSharing | undefined;

  constructor(private readonly deps: ImageSnapshotsDeps) {
    this.sharing = deps.cache
      ? new ImageSnapshotSharing({
          cache: deps.cache,
          store: deps.store,
          memory: deps.memory,
          logger: deps.logger,
          now: deps.now,
          defaultUser: deps.defaults.user,
          closed: () => this.closed,
        })
      : undefined;
  }

  /**
   * The image snapshot for this image and size, built first if there is none. A disk size,
   * when given, is checked first: a sandbox's disk must hold the image.
   */
  async ready(image: GuestImage, sizes: ImageSizes & { diskMiB?: number }): Promise<SnapshotRecord> {
    if (this.closed) throw new WrennError("unavailable", "host agent is shutting down");
    if (sizes.diskMiB !== undefined) {
      const imageMiB = await imageDiskMiB(image);
      if (sizes.diskMiB < imageMiB) {
        throw new WrennError(
          "invalid_argument",
          `a ${sizes.diskMiB} MiB disk cannot hold image ${image.name} (${imageMiB} MiB)`,
        );
      }
    }
    const build = imageBuildOf(image);
    const key = imageSnapshotKey(image.name, build, sizes, this.deps.bootProfile);
    const existing = this.find(key);
    if (existing) return existing;
    let pending = this.building.get(key);
    if (!pending) {
      const wanted = { vcpus: sizes.vcpus, memoryMiB: sizes.memoryMiB };
      pending = this.build(image, build, key, wanted).finally(() => this.building.delete(key));
      this.building.set(key, pending);
    }
    return pending;
  }

  /** Whether the snapshot for this image and size exists (not merely being built). */
  has(image: GuestImage, sizes: ImageSizes): boolean {
    return (
      this.find(imageSnapshotKey(image.name, imageBuildOf(image), sizes, this.deps.bootProfile)) !== undefined
    );
  }

  private find(key: string): SnapshotRecord | undefined {
    return this.deps.store.all().find((s) => !s.deleted && s.imageKey === key);
  }

  /** Memory snapshots of builds in flight (garbage collection must keep them). */
  pinnedMemory(): string[] {
    return [...this.builders]
      .map((e) => e.record.memorySnapshot)
      .filter((s): s is string => s !== undefined)
      .concat(this.sharing?.pinnedMemory() ?? []);
  }

  /** Builds currently running (for tests and logs). */
  get inFlight(): number {
    return this.building.size;
  }

  /** The snapshot from the host cache, else a cold boot; then older builds' snapshots go. */
  private async build(
    image: GuestImage,
    build: string,
    key: string,
    sizes: ImageSizes,
  ): Promise<SnapshotRecord> {
    const coldBuild = () => this.coldBuild(image, build, key, sizes);
    const snapshot = this.sharing
      ? (await this.sharing.obtain(image, key, build, coldBuild)).snapshot
      : await coldBuild();
    // The snapshot is made: tidying older builds' must not fail the creates waiting for it.
    await this.retireOlderBuilds(image.name, build).catch((err: unknown) =>
      this.deps.logger.warn("deleting older image snapshots failed", { image: image.name, err }),
    );
    return snapshot;
  }

  private async coldBuild(
    image: GuestImage,
    build: string,
    key: string,
    sizes: ImageSizes,
  ): Promise<SnapshotRecord> {
    const { deps } = this;
    if (this.closed) throw new WrennError("unavailable", "host agent is shutting down");
    const started = performance.now();
    const resources = { ...sizes, diskMiB: await imageDiskMiB(image) };
    deps.admit(resources);
    const id = `image-snapshot-${randomBytes(6).toString("hex")}`;
    const record = newSandboxRecord({
      id,
      input: { image: image.name },
      image: image.name,
      resources,
      timeoutSec: deps.defaults.timeoutSec,
      envVars: {},
      source: undefined,
      defaultUser: deps.defaults.user,
      runDir: deps.runDirFor(id),
      createdAt: deps.now(),
    });
    record.internal = true;
    const entry = newEntry(record);
    const log = deps.logger.child({ image: image.name, snapshot: key });
    log.info("building image snapshot (cold boot)", { vcpus: sizes.vcpus, memoryMiB: sizes.memoryMiB });
    this.builders.add(entry);
    try {
      await deps.starts.run(() =>
        deps.start.run(entry, { image, create: { diskBasePath: image.rootfsPath } }),
      );
      clearTimer(entry);
      const bootMs = Math.round(performance.now() - started);
      if (this.closed) throw new WrennError("unavailable", "host agent is shutting down");
      await this.warmUp(entry, log);
      await deps.pauses.pause(entry);
      const snapshot = await this.freeze(entry, key, build, bootMs);
      log.info("image snapshot ready", { ms: Math.round(performance.now() - started), bootMs });
      return snapshot;
    } catch (err) {
      const error = WrennError.from(err);
      log.warn("image snapshot build failed", { err: error.message });
      await releaseVmResources(deps.release, entry).catch((e: unknown) =>
        log.error("image snapshot build cleanup failed", { err: e }),
      );
      await deps.records.remove(id).catch(() => {});
      this.builders.delete(entry);
      await deps.collectGarbage().catch(() => {});
      throw new WrennError(
        error.code,
        `preparing the snapshot of image ${image.name} (${sizes.vcpus} vCPUs, ${sizes.memoryMiB} MiB) failed: ${error.message}`,
        { cause: err },
      );
    } finally {
      this.builders.delete(entry);
    }
  }

  /**
   * Runs a command the way a user's exec does (envd process start, a login shell) a few
   * times before the snapshot, so every sandbox restored from it starts with envd's code
   * paths compiled and the shell's files in the guest's page cache. Best effort.
   */
  private async warmUp(entry: SandboxEntry, log: Logger): Promise<void> {
    for (let i = 0; i < WARM_UP_RUNS; i++) {
      const result = await entry.envd
        ?.guest(entry.record.envdAccessToken)
        .exec({ command: "exec /bin/echo warm" }, { timeoutMs: 30_000 })
        .catch((err: unknown) => ({ exitCode: -1, error: String(err) }));
      if (result?.exitCode !== 0) {
        log.warn("image snapshot warm-up command failed", { error: result?.error });
        return;
      }
    }
  }

  /** Turns the paused build VM into the hidden snapshot record; the build VM's record goes. */
  private async freeze(
    entry: SandboxEntry,
    key: string,
    build: string,
    bootMs: number,
  ): Promise<SnapshotRecord> {
    const { deps } = this;
    const { record } = entry;
    if (!record.memorySnapshot || !record.overlayPath) {
      throw new WrennError(
        "internal",
        `image snapshot build ${record.id} has no memory snapshot or disk layer`,
      );
    }
    const store = deps.store;
    const snapshotId = store.newId();
    const dir = store.dirFor(snapshotId);
    const diskPath = join(dir, DISK_LAYER_FILE);
    const snapshot: SnapshotRecord = {
      id: snapshotId,
      // Not a valid user-given name (those start with a letter or digit): never collides.
      name: `.image-${key}`,
      hidden: true,
      deleted: false,
      sourceSandboxId: record.id,
      image: record.image,
      resources: { ...record.resources },
      createdAt: deps.now().toISOString(),
      memorySnapshot: record.memorySnapshot,
      diskPath,
      envdAccessToken: record.envdAccessToken,
      defaultUser: record.defaultUser,
      defaultWorkdir: record.defaultWorkdir,
      dependsOn: [],
      imageKey: key,
      imageBuild: build,
      imageBootMs: bootMs,
    };
    try {
      await mkdir(dir, { recursive: true });
      await rename(record.overlayPath, diskPath);
      await chmod(diskPath, 0o444);
      await store.save(snapshot);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
    record.overlayPath = undefined;
    await releaseVmResources(deps.release, entry);
    await deps.records.remove(record.id);
    return snapshot;
  }

  /** Deletes an image snapshot a restore found unusable, and the host cache's entry for it. */
  async discard(snapshot: SnapshotRecord): Promise<void> {
    const current = this.deps.store.byId(snapshot.id);
    if (!current || current.deleted || current.imageKey === undefined) return;
    this.deps.logger.warn("image snapshot cannot be restored; deleting it", { snapshot: current.imageKey });
    await this.deps.store.save({ ...current, deleted: true, name: "" });
    await this.sharing?.drop(current.imageKey);
    await this.deps.collectGarbage();
  }

  /** Deletes the image's snapshots of other builds (their files go with their last dependent). */
  async retireOlderBuilds(imageName: string, build: string): Promise<void> {
    const stale = this.deps.store
      .all()
      .filter(
        (s) => !s.deleted && s.imageKey !== undefined && s.image === imageName && s.imageBuild !== build,
      );
    for (const s of stale) await this.deps.store.save({ ...s, deleted: true, name: "" });
    if (stale.length > 0) {
      this.deps.logger.info("image snapshots of an older build deleted", {
        image: imageName,
        count: stale.length,
      });
      await this.deps.collectGarbage();
    }
  }

  /** Stops builds in flight (their VMs are killed, their waiters fail) and waits for them to unwind. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = [...this.building.values()].map((p) => p.catch(() => {}));
    if (pending.length === 0) return;
    const done = Promise.all(pending);
    let finished = false;
    void done.then(() => {
      finished = true;
    });
    while (!finished) {
      for (const entry of this.builders) await entry.vm?.kill().catch(() => {});
      await Promise.race([done, new Promise((r) => setTimeout(r, 100))]);
    }
  }
}
