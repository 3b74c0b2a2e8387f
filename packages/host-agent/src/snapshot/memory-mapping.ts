/**
 * The mapping math of generational memory snapshots, independent of any VMM.
 *
 * Guest memory is split into fixed-size blocks. A snapshot's mapping is a sorted,
 * gap-free list of ranges that together cover [0, memorySize); each range says which
 * build's data file holds those bytes and where, or that they are zero (ZERO_BUILD).
 * A later generation stores only the blocks changed since its parent and overlays
 * them on the parent's mapping.
 */

/** Build ids are 16 random bytes, kept as 32 lowercase hex characters. */
export type BuildId = string;

/** Reads as zeros; no file backs it. */
export const ZERO_BUILD: BuildId = "0".repeat(32);

export interface MemoryRange {
  /** Byte offset in guest memory. */
  offset: number;
  length: number;
  buildId: BuildId;
  /** Byte offset inside that build's data file (0 for ZERO_BUILD). */
  buildOffset: number;
}

export interface ResolvedOffset {
  buildId: BuildId;
  buildOffset: number;
  /** Bytes from here to the end of the range (so a reader can copy in runs). */
  runLength: number;
}

export class MappingError extends Error {
  override readonly name = "MappingError";
}

/** Checks the invariants every mapping must hold; throws MappingError naming the first violation. */
export function validateMapping(ranges: readonly MemoryRange[], memorySize: number, blockSize: number): void {
  let expected = 0;
  for (const [i, r] of ranges.entries()) {
    if (r.offset !== expected)
      throw new MappingError(`range ${i} starts at ${r.offset}, expected ${expected}`);
    if (r.length <= 0 || r.length % blockSize !== 0) {
      throw new MappingError(`range ${i} has length ${r.length}, not a positive multiple of ${blockSize}`);
    }
    if (r.buildOffset < 0 || r.buildOffset % blockSize !== 0) {
      throw new MappingError(`range ${i} has build offset ${r.buildOffset}, not block aligned`);
    }
    if (r.buildId === ZERO_BUILD && r.buildOffset !== 0) {
      throw new MappingError(`range ${i} is zero-filled but has build offset ${r.buildOffset}`);
    }
    if (!/^[0-9a-f]{32}$/.test(r.buildId)) throw new MappingError(`range ${i} has a malformed build id`);
    expected = r.offset + r.length;
  }
  if (expected !== memorySize)
    throw new MappingError(`mapping covers ${expected} bytes, memory is ${memorySize}`);
}

/** Joins neighbours that continue each other (same build, contiguous in its file, or both zero). */
export function coalesce(ranges: readonly MemoryRange[]): MemoryRange[] {
  const out: MemoryRange[] = [];
  for (const r of ranges) {
    const last = out[out.length - 1];
    if (
      last &&
      last.buildId === r.buildId &&
      last.offset + last.length === r.offset &&
      (r.buildId === ZERO_BUILD || last.buildOffset + last.length === r.buildOffset)
    ) {
      last.length += r.length;
    } else {
      out.push({ ...r });
    }
  }
  return out;
}

/** A mapping of memory that is all zeros. */
export function zeroMapping(memorySize: number): MemoryRange[] {
  return [{ offset: 0, length: memorySize, buildId: ZERO_BUILD, buildOffset: 0 }];
}

/** Index of the range holding `offset` (binary search). */
function indexOf(ranges: readonly MemoryRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const r = ranges[mid] as MemoryRange;
    if (offset < r.offset) hi = mid - 1;
    else if (offset >= r.offset + r.length) lo = mid + 1;
    else return mid;
  }
  return -1;
}

/** Where the byte at `offset` of guest memory lives. */
export function resolveOffset(ranges: readonly MemoryRange[], offset: number): ResolvedOffset {
  const i = indexOf(ranges, offset);
  if (i < 0) throw new MappingError(`offset ${offset} is outside the mapping`);
  const r = ranges[i] as MemoryRange;
  const within = offset - r.offset;
  return {
    buildId: r.buildId,
    buildOffset: r.buildId === ZERO_BUILD ? 0 : r.buildOffset + within,
    runLength: r.length - within,
  };
}

/**
 * Overlays `diff` (sorted, non-overlapping ranges, not necessarily contiguous) on
 * `parent` (a full mapping). Where they overlap the diff wins. Result is coalesced.
 */
export function overlay(parent: readonly MemoryRange[], diff: readonly MemoryRange[]): MemoryRange[] {
  const out: MemoryRange[] = [];
  let p = 0;
  const copyOf = (i: number): MemoryRange | undefined => {
    const r = parent[i];
    return r ? { ...r } : undefined;
  };
  // The part of parent[p] not yet consumed; diff ranges cut it from the front.
  let cur = copyOf(0);
  /** Consumes parent bytes below `offset`, emitting them to the output when `emit`. */
  const consumeParentUntil = (offset: number, emit: boolean) => {
    while (cur && cur.offset < offset) {
      if (cur.offset + cur.length <= offset) {
        if (emit) out.push(cur);
        p += 1;
        cur = copyOf(p);
        continue;
      }
      const cut = offset - cur.offset;
      if (emit) out.push({ ...cur, length: cut });
      cur = {
        ...cur,
        offset,
        length: cur.length - cut,
        buildOffset: cur.buildId === ZERO_BUILD ? 0 : cur.buildOffset + cut,
      };
    }
  };
  let lastEnd = 0;
  for (const d of diff) {
    if (d.offset < lastEnd) throw new MappingError(`diff ranges overlap or are unsorted at ${d.offset}`);
    lastEnd = d.offset + d.length;
    consumeParentUntil(d.offset, true);
    out.push({ ...d });
    consumeParentUntil(d.offset + d.length, false);
  }
  while (cur) {
    out.push(cur);
    p += 1;
    cur = copyOf(p);
  }
  return coalesce(out);
}

/** One changed block of a new generation: its index, and whether it is now all zeros. */
export interface ChangedBlock {
  index: number;
  zero: boolean;
}

/**
 * The diff ranges for a new build from its changed blocks (sorted by index). Non-zero
 * blocks are laid out one after another in the build's data file, in block order;
 * blocks that became zero map to ZERO_BUILD (so they read back as zeros, not as the
 * parent's old contents). Returns the ranges and the data file's size.
 */
export function diffRanges(
  changed: readonly ChangedBlock[],
  buildId: BuildId,
  blockSize: number,
): { ranges: MemoryRange[]; fileSize: number } {
  const ranges: MemoryRange[] = [];
  let fileSize = 0;
  let previous = -1;
  for (const block of changed) {
    if (block.index <= previous)
      throw new MappingError(`changed blocks must be sorted and unique (${block.index})`);
    previous = block.index;
    if (block.zero) {
      ranges.push({
        offset: block.index * blockSize,
        length: blockSize,
        buildId: ZERO_BUILD,
        buildOffset: 0,
      });
    } else {
      ranges.push({ offset: block.index * blockSize, length: blockSize, buildId, buildOffset: fileSize });
      fileSize += blockSize;
    }
  }
  return { ranges: coalesce(ranges), fileSize };
}

/** Distinct builds (other than ZERO_BUILD) a mapping reads from: the length of its chain. */
export function referencedBuilds(ranges: readonly MemoryRange[]): BuildId[] {
  const ids = new Set<BuildId>();
  for (const r of ranges) if (r.buildId !== ZERO_BUILD) ids.add(r.buildId);
  return [...ids];
}

/** Bytes of guest memory backed by data (not zero). */
export function dataBytes(ranges: readonly MemoryRange[]): number {
  return ranges.reduce((n, r) => (r.buildId === ZERO_BUILD ? n : n + r.length), 0);
}
