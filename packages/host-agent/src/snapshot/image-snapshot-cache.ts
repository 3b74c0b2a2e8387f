/**
 * The host-wide cache of image snapshots: one entry per image build, VM size, accelerator and
 * VMM version, shared by every agent on the machine (and by an agent whose data dir was wiped).
 * An entry is a directory of immutable files, published whole by a rename:
 *   <dir>/<name>/entry.json   what the entry is (CachedImageSnapshot)
 *   <dir>/<name>/memory/      the memory snapshot's files (memory-store.ts layout)
 *   <dir>/<name>/disk.qcow2   the read-only disk layer, backed by the image's root disk
 * Agents take the files by hard link, so an entry costs its disk space once however many
 * agents hold it, and an agent's own garbage collection only ever drops its own links.
 * One agent builds a missing entry at a time: it holds `<dir>/<name>.claim` (created with
 * O_EXCL, naming its pid); the others wait for the entry or for the claim to go.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { z } from "zod";
import { linkOrCopy } from "../drivers-system/file-links.js";
import { MemorySnapshotStore } from "./memory-store.js";

const ENTRY_FILE = "entry.json";
const MEMORY_DIR = "memory";
const DISK_FILE = "disk.qcow2";
const CLAIM_SUFFIX = ".claim";
const TMP_PREFIX = ".tmp-";
const FORMAT_VERSION = 1;
/** A claim older than this is a builder that hung or died without cleaning up. */
const DEFAULT_STALE_CLAIM_MS = 15 * 60_000;
/** Leftover half-published directories older than this are removed. */
const STALE_TMP_MS = 60 * 60_000;

const CachedImageSnapshotSchema = z.object({
  version: z.literal(FORMAT_VERSION),
  name: z.string().min(1),
  image: z.string().min(1),
  imageBuild: z.string().min(1),
  resources: z.object({
    vcpus: z.number().int().min(1),
    memoryMiB: z.number().int().min(1),
    diskMiB: z.number().int().min(1),
  }),
  memorySnapshot: z.string().regex(/^[0-9a-f]{32}$/),
  /** The memory snapshot's files under memory/, header last. */
  memoryFiles: z.array(z.string().regex(/^[0-9a-f]{32}\.(mem|dev|hdr)$/)).min(1),
  /** The image root disk (real path) the disk layer reads; the entry is garbage once it is gone. */
  backingFile: z.string().min(1),
  /** envd's token inside the frozen guest (a clone's first /init presents it). */
  envdAccessToken: z.string().min(1),
  defaultWorkdir: z.string(),
  imageBootMs: z.number().optional(),
  createdAt: z.string(),
});

export type CachedImageSnapshot = z.infer<typeof CachedImageSnapshotSchema>;

/** A verified entry and where its files are. */
export interface CacheEntry {
  meta: CachedImageSnapshot;
  memoryDir: string;
  diskPath: string;
}

/** The right to build one entry; release it whether or not the build succeeded. */
export interface CacheClaim {
  release(): Promise<void>;
}

export interface ImageSnapshotCacheOptions {
  dir: string;
  /** The VMM build (e.g. `qemu-system-x86_64 --version`): a device state restores only into the VMM that saved it. */
  vmm: string;
  logger: Logger;
  staleClaimMs?: number | undefined;
  pollMs?: number | undefined;
}

export class ImageSnapshotCache {
  readonly dir: string;
  private readonly vmmTag: string;
  private readonly staleClaimMs: number;
  private readonly pollMs: number;

  constructor(private readonly options: ImageSnapshotCacheOptions) {
    this.dir = options.dir;
    this.vmmTag = createHash("sha256").update(options.vmm).digest("hex").slice(0, 8);
    this.staleClaimMs = options.staleClaimMs ?? DEFAULT_STALE_CLAIM_MS;
    this.pollMs = options.pollMs ?? 250;
  }

  /** The entry's directory name: the agent's image snapshot key plus the VMM build. */
  entryName(key: string): string {
    return `${key}-v${this.vmmTag}`;
  }

  private entryDir(key: string): string {
    return join(this.dir, this.entryName(key));
  }

  /**
   * The entry for this key, checked the way a restore checks a memory snapshot (header,
   * device state, base file size, every diff's checksum) and for its disk layer and the
   * image disk under it. An entry failing a check is removed; undefined then, as when absent.
   */
  async lookup(key: string): Promise<CacheEntry | undefined> {
    const dir = this.entryDir(key);
    let raw: string;
    try {
      raw = await readFile(join(dir, ENTRY_FILE), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    try {
      const meta = CachedImageSnapshotSchema.parse(JSON.parse(raw));
      if (meta.name !== this.entryName(key)) throw new Error(`entry names ${meta.name}`);
      const entry = { meta, memoryDir: join(dir, MEMORY_DIR), diskPath: join(dir, DISK_FILE) };
      await new MemorySnapshotStore(entry.memoryDir, { maxDiffChain: 64 }).planRestore(meta.memorySnapshot);
      if (!(await stat(entry.diskPath)).isFile()) throw new Error("disk layer is not a file");
      await stat(meta.backingFile).catch(() => {
        throw new Error(`image disk ${meta.backingFile} is gone`);
      });
      return entry;
    } catch (err) {
      this.options.logger.warn("dropping an unusable image snapshot cache entry", {
        entry: this.entryName(key),
        err: err instanceof Error ? err.message : String(err),
      });
      await this.remove(this.entryName(key));
      return undefined;
    }
  }

  /** Removes the entry for this key (a restore found it unusable). */
  async drop(key: string): Promise<void> {
    await this.remove(this.entryName(key));
  }

  /**
   * Claims the building of this key's entry; undefined while a live builder holds it. A
   * claim whose process is gone, or older than the stale limit, is taken over.
   */
  async claim(key: string): Promise<CacheClaim | undefined> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = join(this.dir, `${this.entryName(key)}${CLAIM_SUFFIX}`);
    const mine = JSON.stringify({ pid: process.pid, token: randomBytes(8).toString("hex") });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const file = await open(path, "wx", 0o600);
        try {
          await file.writeFile(mine);
        } finally {
          await file.close();
        }
        return {
          release: async () => {
            // Only our own claim: a builder declared stale may since have been replaced.
            const now = await readFile(path, "utf8").catch(() => "");
            if (now === mine) await unlink(path).catch(() => {});
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
      if (!(await this.claimIsStale(path))) return undefined;
      this.options.logger.warn("taking over a stale image snapshot build claim", { claim: path });
      await unlink(path).catch(() => {});
    }
    return undefined;
  }

  private async claimIsStale(path: string): Promise<boolean> {
    let text: string;
    let ageMs: number;
    try {
      [text, ageMs] = await Promise.all([
        readFile(path, "utf8"),
        stat(path).then((s) => Date.now() - s.mtimeMs),
      ]);
    } catch {
      // Gone meanwhile: free to claim.
      return true;
    }
    if (ageMs > this.staleClaimMs) return true;
    const pid = (() => {
      try {
        return Number((JSON.parse(text) as { pid?: unknown }).pid);
      } catch {
        return Number.NaN;
      }
    })();
    // Half-written by a builder that is still writing it: live unless it stays that way.
    if (!Number.isInteger(pid) || pid <= 0) return ageMs > 10_000;
    try {
      process.kill(pid, 0);
      return false;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === "ESRCH";
    }
  }

  /**
   * Waits while another builder holds this key's claim. Resolves true once the claim is
   * gone (the entry may or may not be there: look it up), false after `timeoutMs` or when
   * `stop()` says to give up.
   */
  async waitForBuilder(key: string, timeoutMs: number, stop: () => boolean): Promise<boolean> {
    const path = join(this.dir, `${this.entryName(key)}${CLAIM_SUFFIX}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !stop()) {
      const held = await stat(path).then(
        () => true,
        () => false,
      );
      if (!held || (await this.claimIsStale(path))) return true;
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
    return false;
  }

  /**
   * Publishes an entry: its files are linked (or copied) into a private directory that is
   * then renamed into place, so readers see all of it or nothing. Resolves false when an
   * entry for the key already exists (another builder won; its entry is as good).
   */
  async publish(
    key: string,
    meta: Omit<CachedImageSnapshot, "version" | "name">,
    files: { memoryDir: string; diskPath: string },
  ): Promise<boolean> {
    const name = this.entryName(key);
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `${TMP_PREFIX}${randomBytes(6).toString("hex")}`);
    try {
      await mkdir(join(tmp, MEMORY_DIR), { recursive: true });
      for (const file of meta.memoryFiles) {
        await linkOrCopy(join(files.memoryDir, file), join(tmp, MEMORY_DIR, file));
      }
      await linkOrCopy(files.diskPath, join(tmp, DISK_FILE));
      const full: CachedImageSnapshot = { version: FORMAT_VERSION, name, ...meta };
      await writeFile(join(tmp, ENTRY_FILE), JSON.stringify(full, null, 2), { mode: 0o600 });
      try {
        await rename(tmp, join(this.dir, name));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOTEMPTY" || code === "EEXIST") return false;
        throw err;
      }
      return true;
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }

  /**
   * Removes entries whose image disk is gone (their image build was removed), entries that
   * do not parse, and what interrupted publishes left. Returns the names removed.
   */
  async collect(): Promise<string[]> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const name of names) {
      const path = join(this.dir, name);
      if (name.startsWith(TMP_PREFIX)) {
        const age = await stat(path).then(
          (s) => Date.now() - s.mtimeMs,
          () => 0,
        );
        if (age > STALE_TMP_MS) {
          await rm(path, { recursive: true, force: true });
          removed.push(name);
        }
        continue;
      }
      if (name.endsWith(CLAIM_SUFFIX)) continue;
      const meta = await readFile(join(path, ENTRY_FILE), "utf8")
        .then((raw) => CachedImageSnapshotSchema.parse(JSON.parse(raw)))
        .catch(() => undefined);
      const keep =
        meta !== undefined &&
        (await stat(meta.backingFile).then(
          () => true,
          () => false,
        ));
      if (!keep) {
        await this.remove(name);
        removed.push(name);
      }
    }
    if (removed.length > 0) this.options.logger.info("image snapshot cache entries removed", { removed });
    return removed;
  }

  /** Renames the entry aside first, so no reader ever sees it half removed. */
  private async remove(name: string): Promise<void> {
    const aside = join(this.dir, `${TMP_PREFIX}${randomBytes(6).toString("hex")}`);
    try {
      await rename(join(this.dir, name), aside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw new WrennError("internal", `removing image snapshot cache entry ${name} failed`, { cause: err });
    }
    await rm(aside, { recursive: true, force: true });
  }
}
