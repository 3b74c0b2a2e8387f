/**
 * Reading a stopped VMM's guest RAM from the host through /proc (Linux): which pages are
 * resident or were written since the last reset, and their contents. This is how a pause
 * costs time in proportion to the pages the guest touched, not to its memory size.
 */
import { open, readFile } from "node:fs/promises";
import { WrennError } from "@wrenn/shared";

export const PAGE_SIZE = 4096;
const PRESENT = 1n << 63n;
const SWAPPED = 1n << 62n;
/** Set for a page of a file (page cache) or of shared memory; clear for a private (anonymous) page. */
const FILE_OR_SHARED = 1n << 61n;
/** Pagemap entries read per syscall (8 bytes each: 4 MiB of entries covers 2 GiB of guest RAM). */
const PAGEMAP_CHUNK_PAGES = 512 * 1024;
/** Largest run of pages read from /proc/pid/mem in one syscall. */
const READ_RUN_BYTES = 1024 * 1024;

/** Where a VMM maps guest RAM in its own address space. */
export interface GuestMemoryLocation {
  pid: number;
  /** Start address of the mapping in the VMM process. */
  address: bigint;
  sizeBytes: number;
}

/**
 * Which pages to report: every resident page (a VM whose RAM started empty: its first
 * snapshot), or only private pages. Guest RAM mapped copy-on-write from a snapshot file
 * turns a page private when the guest (or the restore) writes it; unwritten pages stay
 * the file's. (Soft-dirty bits would also tell which pages were written since a point, but
 * not every kernel has them: this host's does not.)
 */
export type PageSelection = "resident" | "private";

/**
 * Finds the mapping of guest RAM: the one of exactly `sizeBytes`, backed by `filePath`
 * when the RAM is a file, else anonymous. Exactly one must match.
 */
export async function locateGuestMemory(
  pid: number,
  sizeBytes: number,
  filePath?: string,
): Promise<GuestMemoryLocation> {
  const maps = await readFile(`/proc/${pid}/maps`, "utf8").catch((err: unknown) => {
    throw new WrennError("internal", `cannot read the memory map of VMM ${pid}`, { cause: err });
  });
  const found: bigint[] = [];
  for (const line of maps.split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \d+\s*(.*)$/.exec(line);
    if (!m) continue;
    const start = BigInt(`0x${m[1]}`);
    const end = BigInt(`0x${m[2]}`);
    if (end - start !== BigInt(sizeBytes)) continue;
    const path = (m[3] ?? "").trim();
    if (filePath ? path === filePath : path === "") found.push(start);
  }
  if (found.length !== 1) {
    throw new WrennError(
      "internal",
      `expected one ${sizeBytes}-byte guest RAM mapping in VMM ${pid}, found ${found.length}`,
    );
  }
  return { pid, address: found[0] as bigint, sizeBytes };
}

/** Indexes (in guest pages) of the selected pages, ascending. */
export async function selectPages(
  location: GuestMemoryLocation,
  selection: PageSelection,
): Promise<number[]> {
  const pages = Math.floor(location.sizeBytes / PAGE_SIZE);
  const firstEntry = Number(location.address / BigInt(PAGE_SIZE));
  const out: number[] = [];
  const file = await open(`/proc/${location.pid}/pagemap`, "r");
  try {
    const buf = Buffer.alloc(Math.min(pages, PAGEMAP_CHUNK_PAGES) * 8);
    for (let start = 0; start < pages; start += PAGEMAP_CHUNK_PAGES) {
      const count = Math.min(PAGEMAP_CHUNK_PAGES, pages - start);
      const { bytesRead } = await file.read(buf, 0, count * 8, (firstEntry + start) * 8);
      if (bytesRead !== count * 8) {
        throw new WrennError("internal", `short pagemap read from VMM ${location.pid}`);
      }
      for (let i = 0; i < count; i++) {
        const entry = buf.readBigUInt64LE(i * 8);
        if (entry & SWAPPED) {
          // A swapped-out page may have been written; the guest's contents are still readable.
          out.push(start + i);
        } else if (entry & PRESENT && (selection === "resident" || !(entry & FILE_OR_SHARED))) {
          out.push(start + i);
        }
      }
    }
  } finally {
    await file.close();
  }
  return out;
}

/** A run of consecutive guest pages and their contents. */
export interface PageRun {
  /** First page index. */
  index: number;
  data: Buffer;
}

/**
 * Reads the given pages (ascending indexes) from the stopped VMM, coalescing neighbours
 * into runs of up to 1 MiB. Each yielded buffer is fresh (the consumer may keep it).
 */
export async function* readPages(
  location: GuestMemoryLocation,
  indexes: readonly number[],
): AsyncGenerator<PageRun> {
  const maxRun = READ_RUN_BYTES / PAGE_SIZE;
  const mem = await open(`/proc/${location.pid}/mem`, "r");
  try {
    let i = 0;
    while (i < indexes.length) {
      const first = indexes[i] as number;
      let count = 1;
      while (i + count < indexes.length && indexes[i + count] === first + count && count < maxRun) count++;
      const data = Buffer.allocUnsafe(count * PAGE_SIZE);
      // Addresses stay below 2^47, well inside a double's exact range.
      const position = Number(location.address) + first * PAGE_SIZE;
      const { bytesRead } = await mem.read(data, 0, data.length, position);
      if (bytesRead !== data.length) {
        throw new WrennError("internal", `short read of guest memory from VMM ${location.pid}`);
      }
      yield { index: first, data };
      i += count;
    }
  } finally {
    await mem.close();
  }
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** True when the 4 KiB page at `offset` of `buf` is all zeros (memcmp against a zero page). */
export function isZeroPage(buf: Buffer, offset: number): boolean {
  return buf.subarray(offset, offset + PAGE_SIZE).equals(ZERO_PAGE);
}
