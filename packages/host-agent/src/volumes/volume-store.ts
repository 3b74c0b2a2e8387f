import { mkdir, readdir, readFile, rename, rm, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { createExt4Image, mountImage, mountPoints, unmount } from "../drivers-system/volume-disk.js";

/**
 * The host's volumes on disk: `<root>/<volumeId>/{volume.json, image.ext4, mnt/}`. Each volume
 * is a sparse ext4 image of its size, loop-mounted at mnt/ (nosuid, nodev, noexec on the host),
 * and has an export id that never changes (NFS file handles embed it). The record is written
 * last on create and removed right after the unmount on delete, so a directory without one is debris.
 */

export interface VolumeRecord {
  volumeId: string;
  teamId: string;
  name: string;
  sizeMiB: number;
  exportId: number;
  createdAt: string;
}

export interface CreateVolumeInput {
  volumeId: string;
  teamId: string;
  name: string;
  sizeMiB: number;
}

const VOLUME_ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const RECORD = "volume.json";
const IMAGE = "image.ext4";
const MOUNT_DIR = "mnt";
/** E2B's default user (uid 1000) owns a new volume's root, as in the guest image. */
const ROOT_OWNER = "1000:1000";
const MAX_EXPORT_ID = 65_535;
const LAST_EXPORT_ID = "last-export-id";

export class VolumeStore {
  private readonly records = new Map<string, VolumeRecord>();
  /** Creates and deletes run one at a time (export id and name allocation). */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly logger: Logger,
    readonly root: string,
  ) {}

  /** Loads the records under `root` and mounts any volume whose image is not mounted. */
  static async open(logger: Logger, root: string): Promise<VolumeStore> {
    const store = new VolumeStore(logger, root);
    await mkdir(root, { recursive: true });
    const mounted = await mountPoints();
    for (const entry of await readdir(root, { withFileTypes: true })) {
      if (!entry.isDirectory() || !VOLUME_ID_RE.test(entry.name)) continue;
      const text = await readFile(join(root, entry.name, RECORD), "utf8").catch(() => undefined);
      if (text === undefined) {
        logger.warn("volume directory without a record left alone", { dir: entry.name });
        continue;
      }
      const record = JSON.parse(text) as VolumeRecord;
      store.records.set(record.volumeId, record);
      const dir = store.mountPath(record.volumeId);
      if (!mounted.has(dir)) await mountImage(join(root, record.volumeId, IMAGE), dir);
    }
    return store;
  }

  /** The host directory holding a volume's files (what ganesha exports). */
  mountPath(volumeId: string): string {
    return join(this.root, volumeId, MOUNT_DIR);
  }

  get(volumeId: string): VolumeRecord | undefined {
    return this.records.get(volumeId);
  }

  list(teamId?: string): VolumeRecord[] {
    return [...this.records.values()]
      .filter((r) => teamId === undefined || r.teamId === teamId)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.volumeId.localeCompare(b.volumeId));
  }

  create(input: CreateVolumeInput): Promise<VolumeRecord> {
    return this.serialize(async () => {
      if (!VOLUME_ID_RE.test(input.volumeId)) {
        throw new WrennError(
          "invalid_argument",
          `volume id ${JSON.stringify(input.volumeId)} must match ${VOLUME_ID_RE}`,
        );
      }
      if (!Number.isInteger(input.sizeMiB) || input.sizeMiB < 16) {
        throw new WrennError("invalid_argument", "volume size must be a whole number of MiB, at least 16");
      }
      if (this.records.has(input.volumeId)) {
        throw new WrennError("already_exists", `volume ${input.volumeId} already exists`);
      }
      for (const r of this.records.values()) {
        if (r.teamId === input.teamId && r.name === input.name) {
          throw new WrennError(
            "already_exists",
            `the team already has a volume named ${JSON.stringify(input.name)}`,
          );
        }
      }
      const record: VolumeRecord = {
        ...input,
        exportId: await this.nextExportId(),
        createdAt: new Date().toISOString(),
      };
      const dir = join(this.root, input.volumeId);
      const mnt = this.mountPath(input.volumeId);
      let mountedHere = false;
      try {
        await mkdir(mnt, { recursive: true });
        await createExt4Image(join(dir, IMAGE), input.sizeMiB, ROOT_OWNER);
        await mountImage(join(dir, IMAGE), mnt);
        mountedHere = true;
        // A new volume is empty, as users see it (e2fsck makes lost+found again if it needs one).
        await rmdir(join(mnt, "lost+found")).catch(() => {});
        await writeFile(join(dir, `${RECORD}.tmp`), JSON.stringify(record, null, 2));
        await rename(join(dir, `${RECORD}.tmp`), join(dir, RECORD));
      } catch (err) {
        if (mountedHere) await unmount(mnt).catch(() => {});
        await rm(dir, { recursive: true, force: true }).catch(() => {});
        throw err instanceof WrennError
          ? err
          : new WrennError("internal", `create volume ${input.volumeId}: ${(err as Error).message}`, {
              cause: err,
            });
      }
      this.records.set(record.volumeId, record);
      this.logger.info("volume created", { volumeId: record.volumeId, sizeMiB: record.sizeMiB });
      return record;
    });
  }

  /** Unmounts and removes a volume and its data; not_found when it does not exist. */
  delete(volumeId: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.records.has(volumeId)) throw new WrennError("not_found", `volume ${volumeId} not found`);
      const dir = join(this.root, volumeId);
      const mnt = this.mountPath(volumeId);
      // Unmounted before the record goes: a busy volume stays whole and listed.
      if ((await mountPoints()).has(mnt)) await unmount(mnt);
      await rm(join(dir, RECORD), { force: true });
      this.records.delete(volumeId);
      await rm(dir, { recursive: true, force: true });
      this.logger.info("volume deleted", { volumeId });
    });
  }

  /** Unmounts every volume (they stay on disk; open() mounts them again). */
  async unmountAll(): Promise<void> {
    const mounted = await mountPoints();
    for (const id of this.records.keys()) {
      const mnt = this.mountPath(id);
      if (mounted.has(mnt)) await unmount(mnt);
    }
  }

  /**
   * The next export id, never one a deleted volume had (a guest still holding an old handle
   * must get ESTALE, not a file of another volume); the last one handed out is kept on disk.
   */
  private async nextExportId(): Promise<number> {
    const path = join(this.root, LAST_EXPORT_ID);
    const last = Number((await readFile(path, "utf8").catch(() => "0")).trim()) || 0;
    const id = Math.max(last, ...[...this.records.values()].map((r) => r.exportId)) + 1;
    if (id > MAX_EXPORT_ID) {
      throw new WrennError("resource_exhausted", "this host has no export id left for another volume");
    }
    await writeFile(`${path}.tmp`, String(id));
    await rename(`${path}.tmp`, path);
    return id;
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}
