/**
 * The file-level work of the memory snapshot store: writing a build's blocks, reading
 * blocks back, checking a build against its header entry, ids and the error mapping.
 * `memory-store.ts` decides which files a generation has; this module reads and writes them.
 */
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, open } from "node:fs/promises";
import { WrennError } from "@wrenn/shared";
import { isZeroPage, PAGE_SIZE, type PageRun } from "./guest-memory.js";
import type { MemoryHeader } from "./memory-header.js";
import { type BuildId, coalesce, type MemoryRange, ZERO_BUILD } from "./memory-mapping.js";

export type SnapshotId = BuildId;

/** Bytes read or copied at a time. */
export const IO_CHUNK = 1024 * 1024;
const ID_RE = /^[0-9a-f]{32}$/;

/** Maps file-system failures to the registry's codes (a full disk is resource_exhausted). */
export function storageError(what: string, err: unknown): WrennError {
  if (err instanceof WrennError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new WrennError("resource_exhausted", `${what}: no space left for the snapshot`, { cause: err });
  }
  return new WrennError("internal", `${what}: ${(err as Error).message}`, { cause: err });
}

export function corrupt(id: string, err: unknown): WrennError {
  const why = err instanceof Error ? err.message : String(err);
  return new WrennError("snapshot_corrupt", `memory snapshot ${id} is unusable: ${why}`, { cause: err });
}

export function newSnapshotId(): SnapshotId {
  return randomBytes(16).toString("hex");
}

export function checkSnapshotId(id: string): string {
  if (!ID_RE.test(id)) throw new WrennError("invalid_argument", `"${id}" is not a snapshot id`);
  return id;
}

/** Build data files opened on first use and closed together. */
export class BuildFiles {
  private readonly files = new Map<BuildId, FileHandle>();

  constructor(private readonly dataPath: (id: BuildId) => string) {}

  async get(buildId: BuildId): Promise<FileHandle> {
    let file = this.files.get(buildId);
    if (!file) {
      file = await open(this.dataPath(buildId), "r");
      this.files.set(buildId, file);
    }
    return file;
  }

  /** Exactly `length` bytes at `position` of a build, or snapshot_corrupt when the file is short. */
  async read(buildId: BuildId, position: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    const { bytesRead } = await (await this.get(buildId)).read(buf, 0, length, position);
    if (bytesRead !== length) throw corrupt(buildId, new Error("data file is truncated"));
    return buf;
  }

  async close(): Promise<void> {
    await Promise.all([...this.files.values()].map((f) => f.close()));
    this.files.clear();
  }
}

/** Checks a diff build's file against its header entry: present, of its size, with its checksum. */
export async function verifyBuild(
  snapshotId: SnapshotId,
  path: string,
  build: { buildId: BuildId; fileSize: number; sha256: string },
): Promise<void> {
  let file: FileHandle;
  try {
    file = await open(path, "r");
  } catch (err) {
    throw corrupt(
      snapshotId,
      new Error(`memory file ${build.buildId} is missing (${(err as Error).message})`),
    );
  }
  try {
    const info = await file.stat();
    if (info.size !== build.fileSize) {
      throw corrupt(
        snapshotId,
        new Error(`memory file ${build.buildId} is ${info.size} bytes, expected ${build.fileSize}`),
      );
    }
    const hash = createHash("sha256");
    const buf = Buffer.allocUnsafe(IO_CHUNK);
    for (let at = 0; at < build.fileSize; at += IO_CHUNK) {
      const { bytesRead } = await file.read(buf, 0, Math.min(IO_CHUNK, build.fileSize - at), at);
      hash.update(buf.subarray(0, bytesRead));
    }
    if (hash.digest("hex") !== build.sha256) {
      throw corrupt(snapshotId, new Error(`memory file ${build.buildId} fails its checksum`));
    }
  } finally {
    await file.close();
  }
}

/**
 * The ranges a restore must write into guest memory on top of the mapped base: everything
 * a diff build holds, and zero ranges where the base file has data.
 */
export function injectedRanges(header: MemoryHeader, baseHeader: MemoryHeader): MemoryRange[] {
  const baseData = baseHeader.ranges.filter((r) => r.buildId !== ZERO_BUILD);
  const out: MemoryRange[] = [];
  for (const r of header.ranges) {
    if (r.buildId === header.baseBuildId) continue;
    if (r.buildId !== ZERO_BUILD) {
      out.push(r);
      continue;
    }
    for (const b of baseData) {
      const start = Math.max(r.offset, b.offset);
      const end = Math.min(r.offset + r.length, b.offset + b.length);
      if (start < end) out.push({ offset: start, length: end - start, buildId: ZERO_BUILD, buildOffset: 0 });
    }
  }
  return out.sort((x, y) => x.offset - y.offset);
}

/** The pages of `ranges`, ascending: their data, or undefined for a page that must read as zeros. */
export async function* readPages(
  ranges: readonly MemoryRange[],
  dataPath: (id: BuildId) => string,
): AsyncGenerator<{ offset: number; data: Buffer | undefined }> {
  const files = new BuildFiles(dataPath);
  try {
    for (const r of ranges) {
      if (r.buildId === ZERO_BUILD) {
        for (let at = 0; at < r.length; at += PAGE_SIZE) yield { offset: r.offset + at, data: undefined };
        continue;
      }
      for (let done = 0; done < r.length; done += IO_CHUNK) {
        const len = Math.min(IO_CHUNK, r.length - done);
        const buf = await files.read(r.buildId, r.buildOffset + done, len);
        for (let at = 0; at < len; at += PAGE_SIZE) {
          yield { offset: r.offset + done + at, data: buf.subarray(at, at + PAGE_SIZE) };
        }
      }
    }
  } finally {
    await files.close();
  }
}

/**
 * Writes the pages of `runs` to `path`: at their guest offsets in a sparse file of
 * `flatSize` bytes, or packed one after another. Zero pages are not stored; they map to
 * ZERO_BUILD. Returns the diff ranges, the file's size and its checksum (over the stored
 * blocks in guest order, which for a packed file is the whole file).
 */
export async function writeBlocks(
  path: string,
  buildId: BuildId,
  runs: AsyncIterable<PageRun>,
  flatSize: number | undefined,
): Promise<{ ranges: MemoryRange[]; fileSize: number; sha256: string; bytesWritten: number }> {
  const file = await open(path, "wx", 0o600);
  const hash = createHash("sha256");
  const ranges: MemoryRange[] = [];
  let packedAt = 0;
  let bytesWritten = 0;
  try {
    if (flatSize !== undefined) await file.truncate(flatSize);
    for await (const run of runs) {
      const pages = run.data.length / PAGE_SIZE;
      let i = 0;
      while (i < pages) {
        const zero = isZeroPage(run.data, i * PAGE_SIZE);
        let n = 1;
        while (i + n < pages && isZeroPage(run.data, (i + n) * PAGE_SIZE) === zero) n++;
        const offset = (run.index + i) * PAGE_SIZE;
        const length = n * PAGE_SIZE;
        if (zero) {
          ranges.push({ offset, length, buildId: ZERO_BUILD, buildOffset: 0 });
        } else {
          const chunk = run.data.subarray(i * PAGE_SIZE, (i + n) * PAGE_SIZE);
          const at = flatSize !== undefined ? offset : packedAt;
          await file.write(chunk, 0, chunk.length, at);
          hash.update(chunk);
          ranges.push({ offset, length, buildId, buildOffset: at });
          packedAt += length;
          bytesWritten += length;
        }
        i += n;
      }
    }
    await file.sync();
  } finally {
    await file.close();
  }
  return {
    ranges: coalesce(ranges),
    fileSize: flatSize ?? packedAt,
    sha256: hash.digest("hex"),
    bytesWritten,
  };
}

export async function fsyncFile(path: string): Promise<void> {
  const file = await open(path, "r+");
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}
