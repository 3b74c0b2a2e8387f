import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { PAGE_SIZE, type PageRun } from "../src/snapshot/guest-memory.js";
import { referencedBuilds } from "../src/snapshot/memory-mapping.js";
import { MemorySnapshotStore, type SnapshotId } from "../src/snapshot/memory-store.js";

const PAGES = 64;
const MEMORY = PAGES * PAGE_SIZE;

/** Guest memory as a test keeps it: one buffer, changed page by page. */
function page(fill: number | "random"): Buffer {
  return fill === "random" ? randomBytes(PAGE_SIZE) : Buffer.alloc(PAGE_SIZE, fill);
}

/** The runs a pause would hand over: the given pages of `memory`, ascending, neighbours joined. */
async function* runsOf(memory: Buffer, pages: number[]): AsyncGenerator<PageRun> {
  const sorted = [...pages].sort((a, b) => a - b);
  let i = 0;
  while (i < sorted.length) {
    const first = sorted[i] as number;
    let n = 1;
    while (sorted[i + n] === first + n) n++;
    yield { index: first, data: Buffer.from(memory.subarray(first * PAGE_SIZE, (first + n) * PAGE_SIZE)) };
    i += n;
  }
}

/** What a restore puts in guest memory: the mapped base file, then the injected pages. */
async function restoredMemory(store: MemorySnapshotStore, id: SnapshotId): Promise<Buffer> {
  const plan = await store.planRestore(id);
  const memory = Buffer.from(readFileSync(plan.baseFile));
  for await (const p of plan.pages()) {
    if (p.data) p.data.copy(memory, p.offset);
    else memory.fill(0, p.offset, p.offset + PAGE_SIZE);
  }
  return memory;
}

describe("memory snapshot store (generations on disk)", () => {
  let dir: string;
  let store: MemorySnapshotStore;
  const saveDeviceState = async (path: string) => writeFileSync(path, "device-state");

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-memstore-"));
    store = new MemorySnapshotStore(dir, { maxDiffChain: 2 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function generation(parent: SnapshotId | undefined, memory: Buffer, pages: number[]) {
    return store.writeGeneration({
      parent,
      memorySize: MEMORY,
      runs: runsOf(memory, pages),
      saveDeviceState,
    });
  }

  it("restores every generation exactly, zeroed pages included, while diffs store only changes", async () => {
    const memory = Buffer.alloc(MEMORY);
    for (const i of [0, 1, 2, 10, 11, 40]) page("random").copy(memory, i * PAGE_SIZE);
    // A first snapshot gets every resident page; zero ones (5) are not stored.
    const g0 = await generation(undefined, memory, [0, 1, 2, 5, 10, 11, 40]);
    expect(g0.header.generation).toBe(0);
    expect(g0.bytesWritten).toBe(6 * PAGE_SIZE);
    expect(await restoredMemory(store, g0.id)).toEqual(memory);

    // Page 1 changes, page 10 becomes all zeros, page 2 is offered but unchanged.
    page("random").copy(memory, 1 * PAGE_SIZE);
    memory.fill(0, 10 * PAGE_SIZE, 11 * PAGE_SIZE);
    const g1 = await generation(g0.id, memory, [1, 2, 10]);
    expect(g1.header.generation).toBe(1);
    expect(g1.bytesWritten).toBe(PAGE_SIZE);
    const restored = await restoredMemory(store, g1.id);
    expect(restored.subarray(10 * PAGE_SIZE, 11 * PAGE_SIZE)).toEqual(Buffer.alloc(PAGE_SIZE));
    expect(restored).toEqual(memory);
    // The older generation is untouched by the newer one.
    expect((await restoredMemory(store, g0.id)).subarray(10 * PAGE_SIZE, 11 * PAGE_SIZE)).not.toEqual(
      Buffer.alloc(PAGE_SIZE),
    );
  });

  it("merges the diff chain past its limit, and the merged snapshot reads back the same", async () => {
    const memory = Buffer.alloc(MEMORY);
    for (let i = 0; i < 8; i++) page("random").copy(memory, i * PAGE_SIZE);
    let id = (await generation(undefined, memory, [0, 1, 2, 3, 4, 5, 6, 7])).id;
    for (let g = 1; g <= 5; g++) {
      const changed = [g, 20 + g];
      for (const i of changed) page("random").copy(memory, i * PAGE_SIZE);
      const written = await generation(id, memory, changed);
      const diffs = referencedBuilds(written.header.ranges).filter((b) => b !== written.header.baseBuildId);
      expect(diffs.length).toBeLessThanOrEqual(2);
      expect(await restoredMemory(store, written.id)).toEqual(memory);
      id = written.id;
    }
    // Only what the newest snapshot reaches survives a collection, and it still restores.
    await store.collectGarbage([id]);
    const header = await store.readHeader(id);
    expect(readdirSync(dir).filter((f) => f.endsWith(".mem"))).toHaveLength(header.builds.length);
    expect(await restoredMemory(store, id)).toEqual(memory);
  });

  it("refuses corrupted, truncated or missing files with snapshot_corrupt", async () => {
    const memory = Buffer.alloc(MEMORY);
    page("random").copy(memory, 3 * PAGE_SIZE);
    const g0 = await generation(undefined, memory, [3]);
    page("random").copy(memory, 4 * PAGE_SIZE);
    const g1 = await generation(g0.id, memory, [4]);

    const diff = store.dataPath(g1.id);
    const bytes = readFileSync(diff);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    writeFileSync(diff, bytes);
    await expect(store.planRestore(g1.id)).rejects.toMatchObject({ code: "snapshot_corrupt" });

    truncateSync(store.headerPath(g0.id), 40);
    await expect(store.planRestore(g0.id)).rejects.toMatchObject({ code: "snapshot_corrupt" });
    await expect(store.planRestore("0123456789abcdef0123456789abcdef")).rejects.toBeInstanceOf(WrennError);
  });

  it("leaves nothing behind when saving the device state fails", async () => {
    const memory = Buffer.alloc(MEMORY);
    page("random").copy(memory, 0);
    await expect(
      store.writeGeneration({
        parent: undefined,
        memorySize: MEMORY,
        runs: runsOf(memory, [0]),
        saveDeviceState: async () => {
          throw new Error("VMM went away");
        },
      }),
    ).rejects.toThrow(/VMM went away/);
    expect(readdirSync(dir)).toEqual([]);
  });
});
