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
import { createHash } from "node:crypto";
import { open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { PAGE_SIZE, type PageRun } from "./guest-memory.js";
import {
  BuildFiles,
  checkSnapshotId,
  corrupt,
  fsyncFile,
  IO_CHUNK,
  injectedRanges,
  newSnapshotId,
  readPages,
  type SnapshotId,
  storageError,
  verifyBuild,
  writeBlocks,
} from "./memory-files.js";
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

export type { SnapshotId };

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

export class MemorySnapshotStore {
  constructor(
    readonly dir: string,
    private readonly options: MemoryStoreOptions,
  ) {}

  dataPath(id: BuildId): string {
    return join(this.dir, `${checkSnapshotId(id)}.mem`);
  }

  deviceStatePath(id: SnapshotId): string {
    return join(this.dir, `${checkSnapshotId(id)}.dev`);
  }

  headerPath(id: SnapshotId): string {
    return join(this.dir, `${checkSnapshotId(id)}.hdr`);
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
    const id = newSnapshotId();
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
    const files = new BuildFiles((b) => this.dataPath(b));
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
      await files.close();
    }
  }

  /** Bytes [offset, offset + length) of guest memory as a snapshot holds them. */
  private async readMemory(
    header: MemoryHeader,
    offset: number,
    length: number,
    files: BuildFiles,
  ): Promise<Buffer> {
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const at = resolveOffset(header.ranges, offset + done);
      const n = Math.min(at.runLength, length - done);
      if (at.buildId !== ZERO_BUILD) {
        const file = await files.get(at.buildId).catch((err: unknown) => {
          throw corrupt(header.buildId, err);
        });
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
      const sources = new BuildFiles((b) => this.dataPath(b));
      try {
        for (const r of header.ranges) {
          if (r.buildId === ZERO_BUILD || r.buildId === header.baseBuildId) {
            ranges.push(r);
            continue;
          }
          for (let done = 0; done < r.length; done += IO_CHUNK) {
            const len = Math.min(IO_CHUNK, r.length - done);
            const buf = await sources.read(r.buildId, r.buildOffset + done, len);
            await out.write(buf, 0, len, at + done);
            hash.update(buf);
          }
          ranges.push({ offset: r.offset, length: r.length, buildId: merged, buildOffset: at });
          at += r.length;
        }
      } finally {
        await sources.close();
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
      await verifyBuild(id, this.dataPath(build.buildId), build);
    }
    const injected = injectedRanges(header, baseHeader);
    const injectedBytes = injected.reduce((n, r) => n + r.length, 0);
    return {
      header,
      baseFile,
      deviceStateFile,
      injectedBytes,
      pages: () => readPages(injected, (b) => this.dataPath(b)),
    };
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

  /**
   * Deletes a generation nothing refers to yet (its pause could not be recorded): its own
   * blocks, device state and header. Its parent's files stay.
   */
  async discard(id: SnapshotId): Promise<void> {
    await Promise.all(
      [this.headerPath(id), this.deviceStatePath(id), this.dataPath(id)].map((f) => rm(f, { force: true })),
    );
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
