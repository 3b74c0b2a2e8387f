import { mkdir, realpath, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { linkOrCopy } from "../drivers-system/file-links.js";
import type { GuestImage } from "../images/image-catalog.js";
import type { CacheEntry, ImageSnapshotCache } from "../snapshot/image-snapshot-cache.js";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import { DISK_LAYER_FILE, type SnapshotRecord, type SnapshotStore } from "./snapshot-store.js";

const FROM_CACHE_PREFIX = "cache:";

/** Whether this agent took the image snapshot from the host cache (rather than cold-booting it). */
export function takenFromHostCache(snapshot: Pick<SnapshotRecord, "sourceSandboxId">): boolean {
  return snapshot.sourceSandboxId.startsWith(FROM_CACHE_PREFIX);
}

/** How long an agent waits for another agent's build of the same entry before building its own. */
const WAIT_FOR_OTHER_BUILDER_MS = 5 * 60_000;
/** Rounds of lookup → claim → wait before giving up on the cache and building alone. */
const MAX_ROUNDS = 3;

export interface ImageSnapshotSharingDeps {
  cache: ImageSnapshotCache;
  store: SnapshotStore;
  memory: MemorySnapshotStore;
  logger: Logger;
  now: () => Date;
  /** The default user this agent gives sandboxes (a cached entry was made by any agent). */
  defaultUser: string;
  /** Whether the agent is shutting down (a wait for another builder gives up). */
  closed(): boolean;
}

/**
 * Image snapshots through the host-wide cache (ImageSnapshotCache): an agent missing one takes
 * the cached entry into its own stores by hard link instead of cold-booting; when there is no
 * entry, one agent builds it (the caller's cold boot) and publishes it, and agents asking
 * meanwhile wait for it. The snapshot in the agent's store is its own record over shared,
 * immutable files: the agent deletes and collects it like any other image snapshot.
 */
export class ImageSnapshotSharing {
  /** Memory snapshots being linked in (garbage collection must keep them until the record is saved). */
  private readonly adopting = new Set<string>();

  constructor(private readonly deps: ImageSnapshotSharingDeps) {}

  pinnedMemory(): string[] {
    return [...this.adopting];
  }

  /**
   * The image snapshot for `key` in this agent's store: taken from the cache when it has the
   * entry, else built by `coldBuild` and published. `cacheHit` tells which.
   */
  async obtain(
    image: GuestImage,
    key: string,
    build: string,
    coldBuild: () => Promise<SnapshotRecord>,
  ): Promise<{ snapshot: SnapshotRecord; cacheHit: boolean }> {
    const log = this.deps.logger.child({ image: image.name, snapshot: key, cache: this.deps.cache.dir });
    let built = false;
    const cold = () => {
      built = true;
      return coldBuild();
    };
    try {
      return await this.throughCache(image, key, build, cold, log);
    } catch (err) {
      // A cache that cannot be used (unwritable, full) must not fail creates: boot instead.
      if (built || this.deps.closed()) throw err;
      log.warn("the host image snapshot cache is unusable; cold-booting", { err });
      return { snapshot: await coldBuild(), cacheHit: false };
    }
  }

  private async throughCache(
    image: GuestImage,
    key: string,
    build: string,
    coldBuild: () => Promise<SnapshotRecord>,
    log: Logger,
  ): Promise<{ snapshot: SnapshotRecord; cacheHit: boolean }> {
    const { cache } = this.deps;
    const backingFile = await realpath(image.rootfsPath);
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const entry = await cache.lookup(key);
      if (entry) {
        if (entry.meta.backingFile !== backingFile) {
          // Same build under another images dir: the entry's disk layer reads the other copy.
          log.info("cached image snapshot reads another images dir; building this agent's own", {
            backingFile: entry.meta.backingFile,
          });
          break;
        }
        const taken = await this.tryAdopt(entry, key, build, log);
        if (taken) return { snapshot: taken, cacheHit: true };
        break;
      }
      const claim = await cache.claim(key);
      if (claim) {
        try {
          // Another agent may have published between the lookup and the claim.
          const late = await cache.lookup(key);
          const taken =
            late?.meta.backingFile === backingFile && (await this.tryAdopt(late, key, build, log));
          if (taken) return { snapshot: taken, cacheHit: true };
          const snapshot = await coldBuild();
          await this.publish(snapshot, key, backingFile).catch((err: unknown) =>
            log.warn("publishing the image snapshot to the host cache failed", { err }),
          );
          return { snapshot, cacheHit: false };
        } finally {
          await claim.release();
        }
      }
      log.info("another agent is building this image snapshot; waiting for it");
      const released = await cache.waitForBuilder(key, WAIT_FOR_OTHER_BUILDER_MS, () => this.deps.closed());
      if (this.deps.closed()) throw new WrennError("unavailable", "host agent is shutting down");
      if (!released) {
        log.warn("the other agent's image snapshot build is taking too long; building this agent's own");
        break;
      }
    }
    return { snapshot: await coldBuild(), cacheHit: false };
  }

  /** adopt(), or undefined when that fails (the caller cold-boots instead). */
  private async tryAdopt(
    entry: CacheEntry,
    key: string,
    build: string,
    log: Logger,
  ): Promise<SnapshotRecord | undefined> {
    try {
      return await this.adopt(entry, key, build);
    } catch (err) {
      log.warn("taking the image snapshot from the host cache failed; cold-booting instead", { err });
      return undefined;
    }
  }

  /** Links a cache entry's files into this agent's stores and records it as its image snapshot. */
  private async adopt(entry: CacheEntry, key: string, build: string): Promise<SnapshotRecord> {
    const { store, memory, cache } = this.deps;
    const { meta } = entry;
    const snapshotId = store.newId();
    const dir = store.dirFor(snapshotId);
    const diskPath = join(dir, DISK_LAYER_FILE);
    this.adopting.add(meta.memorySnapshot);
    try {
      // The header last: a memory snapshot exists exactly when its header does.
      const files = [...meta.memoryFiles].sort(
        (a, b) => Number(a.endsWith(".hdr")) - Number(b.endsWith(".hdr")),
      );
      for (const file of files) await linkOrCopy(join(entry.memoryDir, file), join(memory.dir, file));
      await mkdir(dir, { recursive: true });
      await linkOrCopy(entry.diskPath, diskPath);
      const snapshot: SnapshotRecord = {
        id: snapshotId,
        name: `.image-${key}`,
        hidden: true,
        deleted: false,
        sourceSandboxId: `${FROM_CACHE_PREFIX}${cache.entryName(key)}`,
        image: meta.image,
        resources: { ...meta.resources },
        createdAt: this.deps.now().toISOString(),
        memorySnapshot: meta.memorySnapshot,
        diskPath,
        envdAccessToken: meta.envdAccessToken,
        defaultUser: this.deps.defaultUser,
        defaultWorkdir: meta.defaultWorkdir,
        dependsOn: [],
        imageKey: key,
        imageBuild: build,
        ...(meta.imageBootMs !== undefined ? { imageBootMs: meta.imageBootMs } : {}),
      };
      await store.save(snapshot);
      this.deps.logger.info("image snapshot taken from the host cache (no cold boot)", {
        image: meta.image,
        snapshot: key,
      });
      return snapshot;
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw new WrennError("internal", `taking image snapshot ${key} from the host cache failed`, {
        cause: err,
      });
    } finally {
      this.adopting.delete(meta.memorySnapshot);
    }
  }

  /** Puts a freshly built image snapshot into the host cache for the other agents. */
  private async publish(snapshot: SnapshotRecord, key: string, backingFile: string): Promise<void> {
    const { memory, cache } = this.deps;
    const reachable = await memory.reachable([snapshot.memorySnapshot]);
    const memoryFiles = [...reachable].sort();
    const published = await cache.publish(
      key,
      {
        image: snapshot.image,
        imageBuild: snapshot.imageBuild ?? "",
        resources: { ...snapshot.resources },
        memorySnapshot: snapshot.memorySnapshot,
        memoryFiles,
        backingFile,
        envdAccessToken: snapshot.envdAccessToken,
        defaultWorkdir: snapshot.defaultWorkdir,
        ...(snapshot.imageBootMs !== undefined ? { imageBootMs: snapshot.imageBootMs } : {}),
        createdAt: snapshot.createdAt,
      },
      { memoryDir: memory.dir, diskPath: snapshot.diskPath },
    );
    if (published) {
      this.deps.logger.info("image snapshot published to the host cache", { snapshot: key });
      await cache.collect();
    }
  }

  /** Drops the cache's entry for `key` (a restore found this agent's copy unusable). */
  async drop(key: string): Promise<void> {
    await this.deps.cache.drop(key);
  }
}
