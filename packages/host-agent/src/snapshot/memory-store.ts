/**
 * Memory snapshots on disk, as generations: one directory of immutable files named by
 * snapshot (build) id —
 *   <id>.mem  the data this generation wrote: for a lineage's first snapshot a flat,
 *             sparse file (guest offset = file offset, so a VMM can map it and fault
 *             pages in lazily); for later generations only the changed blocks, packed;
 *   <id>.dev  the VMM's device state (CPU registers, devices) at that moment;
 *   <id>.hdr  the header (memory-header.ts) mapping all of guest memory onto builds.
 * The header is written last: a snapshot exists exactly when its header does.
 */
import { createHash, randomBytes } from "node:crypto";
import { type FileHandle, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { isZeroPage, PAGE_SIZE, type PageRun } from "./guest-memory.js";
import {
  BLOCK_SIZE,
  HEADER_VERSION,
  type MemoryHeader,
  parseHeader,
  SnapshotCorruptError,
  serializeHeader,
} from "./memory-header.js";
import {
  type BuildId,
  coalesce,
  type MemoryRange,
  overlay,
  referencedBuilds,
  resolveOffset,
  ZERO_BUILD,
  zeroMapping,
} from "./memory-mapping.js";

export type SnapshotId = BuildId;

/** What a VMM must put back on restore: the base file it maps lazily, and the pages on top. */
export interface RestorePlan {
  header: MemoryHeader;
  /** Flat file of the lineage's first snapshot, mapped copy-on-write. */
  baseFile: string;
  deviceStateFile: string;
  /** Bytes that go into guest memory eagerly (diff generations and blocks zeroed since the base). */
  injectedBytes: number;
  /** The injected blocks, ascending: data, or undefined for a block that must read as zeros. */
  pages(): AsyncGenerator<{ offset: number; data: Buffer | undefined }>;
}

export interface WriteGenerationInput {
  /** The snapshot this VM's memory started from; undefined for a VM booted with empty RAM. */
  parent: SnapshotId | undefined;
  memorySize: number;
  /**
   * Candidate pages, ascending: every resident page when there is no parent, else every
   * page that may differ from it (the private pages of a copy-on-write mapping). Pages equal
   * to the parent's are dropped here.
   */
  runs: AsyncIterable<PageRun>;
  /** Writes the VMM's device state to the given path. */
  saveDeviceState(path: string): Promise<void>;
}

export interface WrittenGeneration {
  id: SnapshotId;
  header: MemoryHeader;
  /** Guest-memory bytes written to disk by this generation. */
  bytesWritten: number;
}

export interface MemoryStoreOptions {
  /** Diff generations a lineage may read from before they are merged into one. */
  maxDiffChain: number;
}

const ID_RE = /^[0-9a-f]{32}$/;
const WRITE_CHUNK = 1024 * 1024;

/** Maps file-system failures to the registry's codes (a full disk is resource_exhausted). */
function storageError(what: string, err: unknown): WrennError {
  if (err instanceof WrennError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOSPC" || code === "EDQUOT") {
    return new WrennError("resource_exhausted", `${what}: no space left for the snapshot`, { cause: err });
  }
  return new WrennError("internal", `${what}: ${(err as Error).message}`, { cause: err });
}

function corrupt(id: string, err: unknown): WrennError {
  const why = err instanceof Error ? err.message : String(err);
  return new WrennError("snapshot_corrupt", `memory snapshot ${id} is unusable: ${why}`, { cause: err });
}

export class MemorySnapshotStore {
  constructor(
    readonly dir: string,
    private readonly options: MemoryStoreOptions,
  ) {}

  dataPath(id: BuildId): string {
    return join(this.dir, `${checkId(id)}.mem`);
  }

  deviceStatePath(id: SnapshotId): string {
    return join(this.dir, `${checkId(id)}.dev`);
  }

  headerPath(id: SnapshotId): string {
    return join(this.dir, `${checkId(id)}.hdr`);
  }

  /** Reads and verifies a header (checksum, mapping invariants); snapshot_corrupt or not_found otherwise. */
  async readHeader(id: SnapshotId): Promise<MemoryHeader> {
    let buf: Buffer;
    try {
      buf = await readFile(this.headerPath(id));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        throw new WrennError("snapshot_corrupt", `memory snapshot ${id} is missing its header`, {
          cause: err,
        });
      }
      throw storageError(`read header of ${id}`, err);
    }
    try {
      const header = parseHeader(buf);
      if (header.buildId !== id) throw new SnapshotCorruptError(`header names snapshot ${header.buildId}`);
      return header;
    } catch (err) {
      throw corrupt(id, err);
    }
  }

  /**
   * Writes a new generation: the changed blocks (a flat file for a first snapshot, packed
   * otherwise), the device state, then the header. On failure nothing of it is left.
   */
  async writeGeneration(input: WriteGenerationInput): Promise<WrittenGeneration> {
    const parent = input.parent ? await this.readHeader(input.parent) : undefined;
    if (parent && parent.memorySize !== input.memorySize) {
      throw new WrennError(
        "failed_precondition",
        `memory size ${input.memorySize} differs from the parent snapshot's ${parent.memorySize}`,
      );
    }
    const id = newId();
    const created: string[] = [];
    try {
      const dataFile = this.dataPath(id);
      created.push(dataFile);
      const flat = parent === undefined;
      const {
        ranges: diff,
        fileSize,
        sha256,
        bytesWritten,
      } = await writeBlocks(
        dataFile,
        id,
        parent ? this.changedPages(input.runs, parent) : input.runs,
        flat ? input.memorySize : undefined,
      );
      const builds = new Map(parent?.builds.map((b) => [b.buildId, b]) ?? []);
      builds.set(id, { buildId: id, fileSize, sha256 });
      let header: MemoryHeader = {
        version: HEADER_VERSION,
        blockSize: BLOCK_SIZE,
        memorySize: input.memorySize,
        generation: parent ? parent.generation + 1 : 0,
        buildId: id,
        baseBuildId: parent?.baseBuildId ?? id,
        builds: [],
        ranges: overlay(parent?.ranges ?? zeroMapping(input.memorySize), diff),
      };
      header.builds = referencedBuilds(header.ranges)
        .concat(header.baseBuildId)
        .filter((b, i, all) => all.indexOf(b) === i)
        .map((b) => builds.get(b))
        .filter((b) => b !== undefined);
      const diffs = referencedBuilds(header.ranges).filter((b) => b !== header.baseBuildId);
      if (diffs.length > this.options.maxDiffChain) {
        header = await this.mergeDiffs(header, created);
      }
      const devFile = this.deviceStatePath(id);
      created.push(devFile, `${devFile}.tmp`);
      await input.saveDeviceState(`${devFile}.tmp`);
      await fsyncFile(`${devFile}.tmp`);
      await rename(`${devFile}.tmp`, devFile);
      await this.writeHeader(id, header, created);
      return { id, header, bytesWritten };
    } catch (err) {
      await Promise.all(created.map((f) => rm(f, { force: true })));
      throw storageError(`write memory snapshot ${id}`, err);
    }
  }

  /** Drops the pages of `runs` that still hold what `parent` has there; splits runs around them. */
  private async *changedPages(runs: AsyncIterable<PageRun>, parent: MemoryHeader): AsyncGenerator<PageRun> {
    const files = new Map<BuildId, FileHandle>();
    try {
      for await (const run of runs) {
        const offset = run.index * PAGE_SIZE;
        const before = await this.readMemory(parent, offset, run.data.length, files);
        const pages = run.data.length / PAGE_SIZE;
        let start = -1;
        for (let i = 0; i <= pages; i++) {
          const changed =
            i < pages &&
            !run.data
              .subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)
              .equals(before.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
          if (changed && start < 0) start = i;
          if (!changed && start >= 0) {
            yield { index: run.index + start, data: run.data.subarray(start * PAGE_SIZE, i * PAGE_SIZE) };
            start = -1;
          }
        }
      }
    } finally {
      await Promise.all([...files.values()].map((f) => f.close()));
    }
  }

  /** Bytes [offset, offset + length) of guest memory as a snapshot holds them. */
  private async readMemory(
    header: MemoryHeader,
    offset: number,
    length: number,
    files: Map<BuildId, FileHandle>,
  ): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const at = resolveOffset(header.ranges, offset + done);
      const n = Math.min(at.runLength, length - done);
      if (at.buildId !== ZERO_BUILD) {
        let file = files.get(at.buildId);
        if (!file) {
          file = await open(this.dataPath(at.buildId), "r").catch((err: unknown) => {
            throw corrupt(header.buildId, err);
          });
          files.set(at.buildId, file);
        }
        await file.read(out, done, n, at.buildOffset);
      }
      done += n;
    }
    return out;
  }

  private async writeHeader(id: SnapshotId, header: MemoryHeader, created: string[]): Promise<void> {
    const path = this.headerPath(id);
    created.push(path, `${path}.tmp`);
    const file = await open(`${path}.tmp`, "w", 0o600);
    try {
      await file.writeFile(serializeHeader(header));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(`${path}.tmp`, path);
  }

  /** Copies every block held by a diff build into one new packed build; the base stays. */
  private async mergeDiffs(header: MemoryHeader, created: string[]): Promise<MemoryHeader> {
    const merged = header.buildId;
    const path = `${this.dataPath(merged)}.merge`;
    created.push(path);
    const out = await open(path, "w", 0o600);
    const hash = createHash("sha256");
    const ranges: MemoryRange[] = [];
    let at = 0;
    try {
      const sources = new Map<BuildId, FileHandle>();
      try {
        for (const r of header.ranges) {
          if (r.buildId === ZERO_BUILD || r.buildId === header.baseBuildId) {
            ranges.push(r);
            continue;
          }
          let src = sources.get(r.buildId);
          if (!src) {
            src = await open(this.dataPath(r.buildId), "r");
            sources.set(r.buildId, src);
          }
          for (let done = 0; done < r.length; done += WRITE_CHUNK) {
            const len = Math.min(WRITE_CHUNK, r.length - done);
            const buf = Buffer.allocUnsafe(len);
            const { bytesRead } = await src.read(buf, 0, len, r.buildOffset + done);
            if (bytesRead !== len) throw corrupt(r.buildId, new Error("data file is truncated"));
            await out.write(buf, 0, len, at + done);
            hash.update(buf);
          }
          ranges.push({ offset: r.offset, length: r.length, buildId: merged, buildOffset: at });
          at += r.length;
        }
      } finally {
        await Promise.all([...sources.values()].map((f) => f.close()));
      }
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(path, this.dataPath(merged));
    const base = header.builds.find((b) => b.buildId === header.baseBuildId);
    return {
      ...header,
      ranges: coalesce(ranges),
      builds: [...(base ? [base] : []), { buildId: merged, fileSize: at, sha256: hash.digest("hex") }],
    };
  }

  /**
   * Checks a snapshot can be restored (header, device state, base size, every diff's size
   * and checksum) and returns what the VMM needs. Reads the diffs (they are what a resume
   * costs); the base is checked by size only, because it is mapped, not read.
   */
  async planRestore(id: SnapshotId): Promise<RestorePlan> {
    const header = await this.readHeader(id);
    const baseHeader = header.baseBuildId === id ? header : await this.readHeader(header.baseBuildId);
    const deviceStateFile = this.deviceStatePath(id);
    await stat(deviceStateFile).catch((err: unknown) => {
      throw corrupt(id, new Error(`device state is missing (${(err as Error).message})`));
    });
    const baseFile = this.dataPath(header.baseBuildId);
    const baseSize = await stat(baseFile).then(
      (s) => s.size,
      () => -1,
    );
    if (baseSize !== header.memorySize) {
      throw corrupt(id, new Error(`base memory file ${header.baseBuildId} is missing or truncated`));
    }
    for (const build of header.builds) {
      if (build.buildId === header.baseBuildId) continue;
      await this.verifyBuild(id, build.buildId, build.fileSize, build.sha256);
    }
    const injected = injectedRanges(header, baseHeader);
    const injectedBytes = injected.reduce((n, r) => n + r.length, 0);
    return {
      header,
      baseFile,
      deviceStateFile,
      injectedBytes,
      pages: () => this.readInjected(injected),
    };
  }

  private async verifyBuild(id: SnapshotId, buildId: BuildId, size: number, sha256: string): Promise<void> {
    const path = this.dataPath(buildId);
    let file: FileHandle;
    try {
      file = await open(path, "r");
    } catch (err) {
      throw corrupt(id, new Error(`memory file ${buildId} is missing (${(err as Error).message})`));
    }
    try {
      const info = await file.stat();
      if (info.size !== size) {
        throw corrupt(id, new Error(`memory file ${buildId} is ${info.size} bytes, expected ${size}`));
      }
      const hash = createHash("sha256");
      const buf = Buffer.allocUnsafe(WRITE_CHUNK);
      for (let at = 0; at < size; at += WRITE_CHUNK) {
        const { bytesRead } = await file.read(buf, 0, Math.min(WRITE_CHUNK, size - at), at);
        hash.update(buf.subarray(0, bytesRead));
      }
      if (hash.digest("hex") !== sha256)
        throw corrupt(id, new Error(`memory file ${buildId} fails its checksum`));
    } finally {
      await file.close();
    }
  }

  private async *readInjected(
    ranges: readonly MemoryRange[],
  ): AsyncGenerator<{ offset: number; data: Buffer | undefined }> {
    const files = new Map<BuildId, FileHandle>();
    try {
      for (const r of ranges) {
        if (r.buildId === ZERO_BUILD) {
          for (let at = 0; at < r.length; at += PAGE_SIZE) yield { offset: r.offset + at, data: undefined };
          continue;
        }
        let file = files.get(r.buildId);
        if (!file) {
          file = await open(this.dataPath(r.buildId), "r");
          files.set(r.buildId, file);
        }
        for (let done = 0; done < r.length; done += WRITE_CHUNK) {
          const len = Math.min(WRITE_CHUNK, r.length - done);
          const buf = Buffer.allocUnsafe(len);
          const { bytesRead } = await file.read(buf, 0, len, r.buildOffset + done);
          if (bytesRead !== len) throw corrupt(r.buildId, new Error("data file is truncated"));
          for (let at = 0; at < len; at += PAGE_SIZE) {
            yield { offset: r.offset + done + at, data: buf.subarray(at, at + PAGE_SIZE) };
          }
        }
      }
    } finally {
      await Promise.all([...files.values()].map((f) => f.close()));
    }
  }

  /** Builds, device states and headers reachable from the given snapshots. */
  async reachable(ids: Iterable<SnapshotId>): Promise<Set<string>> {
    const keep = new Set<string>();
    for (const id of ids) {
      const header = await this.readHeader(id).catch(() => undefined);
      keep.add(`${id}.hdr`).add(`${id}.dev`);
      if (!header) continue;
      keep.add(`${header.baseBuildId}.hdr`);
      for (const b of header.builds) keep.add(`${b.buildId}.mem`);
    }
    return keep;
  }

  /** Deletes every file no live snapshot reaches (call with no snapshot write in flight). */
  async collectGarbage(live: Iterable<SnapshotId>): Promise<string[]> {
    const keep = await this.reachable(live);
    const names = await readdir(this.dir).catch(() => [] as string[]);
    const removed: string[] = [];
    for (const name of names) {
      if (keep.has(name)) continue;
      await rm(join(this.dir, name), { force: true });
      removed.push(name);
    }
    return removed;
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

/**
 * Writes the pages of `runs` to `path`: at their guest offsets in a sparse file of
 * `flatSize` bytes, or packed one after another. Zero pages are not stored; they map to
 * ZERO_BUILD. Returns the diff ranges, the file's size and its checksum (over the stored
 * blocks in guest order, which for a packed file is the whole file).
 */
async function writeBlocks(
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

async function fsyncFile(path: string): Promise<void> {
  const file = await open(path, "r+");
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

function newId(): SnapshotId {
  return randomBytes(16).toString("hex");
}

function checkId(id: string): string {
  if (!ID_RE.test(id)) throw new WrennError("invalid_argument", `"${id}" is not a snapshot id`);
  return id;
}
