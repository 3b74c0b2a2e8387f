import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  BLOCK_SIZE,
  type MemoryHeader,
  parseHeader,
  SnapshotCorruptError,
  serializeHeader,
} from "../src/snapshot/memory-header.js";
import {
  type ChangedBlock,
  coalesce,
  diffRanges,
  type MemoryRange,
  overlay,
  referencedBuilds,
  resolveOffset,
  validateMapping,
  ZERO_BUILD,
  zeroMapping,
} from "../src/snapshot/memory-mapping.js";

/** Small deterministic PRNG (mulberry32) so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const newBuildId = () => randomBytes(16).toString("hex");

/** The obvious model: one (build, offset-in-build) pair per block. */
type BlockModel = { buildId: string; buildOffset: number }[];

function modelFromRanges(ranges: readonly MemoryRange[], blocks: number): BlockModel {
  const model: BlockModel = [];
  for (let i = 0; i < blocks; i++) {
    const { buildId, buildOffset } = resolveOffset(ranges, i * BLOCK_SIZE);
    model.push({ buildId, buildOffset });
  }
  return model;
}

function randomChanges(rand: () => number, blocks: number): ChangedBlock[] {
  const changed: ChangedBlock[] = [];
  const density = rand();
  for (let i = 0; i < blocks; i++) {
    if (rand() < density * 0.5) changed.push({ index: i, zero: rand() < 0.2 });
  }
  return changed;
}

describe("memory mapping", () => {
  it("overlaying generations matches a per-block model, at every offset", () => {
    for (let seed = 1; seed <= 200; seed++) {
      const rand = prng(seed);
      const blocks = 1 + Math.floor(rand() * 64);
      const memorySize = blocks * BLOCK_SIZE;
      let mapping = zeroMapping(memorySize);
      const model: BlockModel = Array.from({ length: blocks }, () => ({
        buildId: ZERO_BUILD,
        buildOffset: 0,
      }));
      const generations = 1 + Math.floor(rand() * 6);
      for (let g = 0; g < generations; g++) {
        const buildId = newBuildId();
        const changes = randomChanges(rand, blocks);
        const { ranges, fileSize } = diffRanges(changes, buildId, BLOCK_SIZE);
        let written = 0;
        for (const c of changes) {
          model[c.index] = c.zero
            ? { buildId: ZERO_BUILD, buildOffset: 0 }
            : { buildId, buildOffset: written };
          if (!c.zero) written += BLOCK_SIZE;
        }
        expect(fileSize, `seed ${seed}`).toBe(written);
        mapping = overlay(mapping, ranges);
        validateMapping(mapping, memorySize, BLOCK_SIZE);
        expect(modelFromRanges(mapping, blocks), `seed ${seed} generation ${g}`).toEqual(model);
      }
      // Coalescing leaves nothing to join.
      expect(coalesce(mapping)).toEqual(mapping);
      // Lookups inside a block land inside the same block of the build.
      const probe = Math.floor(rand() * memorySize);
      const resolved = resolveOffset(mapping, probe);
      const block = model[Math.floor(probe / BLOCK_SIZE)];
      expect(resolved.buildId).toBe(block?.buildId);
      if (resolved.buildId !== ZERO_BUILD) {
        expect(resolved.buildOffset).toBe((block?.buildOffset ?? 0) + (probe % BLOCK_SIZE));
      }
      expect(resolved.runLength).toBeGreaterThan(0);
    }
  });

  it("reads a block that became zero after its parent as zero, not as the parent's data", () => {
    const parentBuild = newBuildId();
    const parent = diffRanges(
      [0, 1, 2, 3].map((index) => ({ index, zero: false })),
      parentBuild,
      BLOCK_SIZE,
    );
    const base = overlay(zeroMapping(4 * BLOCK_SIZE), parent.ranges);
    const child = diffRanges([{ index: 2, zero: true }], newBuildId(), BLOCK_SIZE);
    const merged = overlay(base, child.ranges);
    expect(resolveOffset(merged, 2 * BLOCK_SIZE + 100).buildId).toBe(ZERO_BUILD);
    expect(resolveOffset(merged, 1 * BLOCK_SIZE).buildId).toBe(parentBuild);
    expect(resolveOffset(merged, 3 * BLOCK_SIZE)).toEqual({
      buildId: parentBuild,
      buildOffset: 3 * BLOCK_SIZE,
      runLength: BLOCK_SIZE,
    });
    expect(child.fileSize).toBe(0);
  });

  it("coalesces contiguous runs of one build into one range", () => {
    const buildId = newBuildId();
    const { ranges } = diffRanges(
      [5, 6, 7, 9].map((index) => ({ index, zero: false })),
      buildId,
      BLOCK_SIZE,
    );
    expect(ranges).toEqual([
      { offset: 5 * BLOCK_SIZE, length: 3 * BLOCK_SIZE, buildId, buildOffset: 0 },
      { offset: 9 * BLOCK_SIZE, length: BLOCK_SIZE, buildId, buildOffset: 3 * BLOCK_SIZE },
    ]);
    expect(referencedBuilds(overlay(zeroMapping(16 * BLOCK_SIZE), ranges))).toEqual([buildId]);
  });

  it("rejects unsorted diffs and mappings with gaps", () => {
    const b = newBuildId();
    expect(() =>
      diffRanges(
        [
          { index: 3, zero: false },
          { index: 1, zero: false },
        ],
        b,
        BLOCK_SIZE,
      ),
    ).toThrow(/sorted/);
    expect(() =>
      validateMapping(
        [{ offset: 0, length: BLOCK_SIZE, buildId: b, buildOffset: 0 }],
        2 * BLOCK_SIZE,
        BLOCK_SIZE,
      ),
    ).toThrow(/covers/);
  });
});

describe("memory header", () => {
  function sampleHeader(): MemoryHeader {
    const buildId = newBuildId();
    const { ranges, fileSize } = diffRanges(
      [0, 1, 7].map((index) => ({ index, zero: false })),
      buildId,
      BLOCK_SIZE,
    );
    return {
      version: 1,
      blockSize: BLOCK_SIZE,
      memorySize: 8 * BLOCK_SIZE,
      generation: 0,
      buildId,
      baseBuildId: buildId,
      builds: [{ buildId, fileSize, sha256: "ab".repeat(32) }],
      ranges: overlay(zeroMapping(8 * BLOCK_SIZE), ranges),
    };
  }

  it("round-trips through its binary form", () => {
    const header = sampleHeader();
    expect(parseHeader(serializeHeader(header))).toEqual(header);
  });

  it("detects truncation and every single-byte corruption", () => {
    const bytes = serializeHeader(sampleHeader());
    expect(() => parseHeader(bytes.subarray(0, bytes.length - 1))).toThrow(SnapshotCorruptError);
    expect(() => parseHeader(bytes.subarray(0, 20))).toThrow(SnapshotCorruptError);
    for (let i = 0; i < bytes.length; i++) {
      const corrupt = Buffer.from(bytes);
      corrupt[i] = (corrupt[i] ?? 0) ^ 0x01;
      expect(() => parseHeader(corrupt), `flip at byte ${i}`).toThrow(SnapshotCorruptError);
    }
  });

  it("refuses a mapping that reads a build it does not list or past a build's end", () => {
    const header = sampleHeader();
    expect(() => serializeHeader({ ...header, builds: [] })).toThrow(/does not list/);
    const short = {
      ...header,
      builds: [{ ...(header.builds[0] as MemoryHeader["builds"][0]), fileSize: BLOCK_SIZE }],
    };
    expect(() => serializeHeader(short)).toThrow(/past the end/);
  });
});
