import { createHash } from "node:crypto";
import {
  type BuildId,
  MappingError,
  type MemoryRange,
  referencedBuilds,
  validateMapping,
  ZERO_BUILD,
} from "./memory-mapping.js";

/**
 * A memory snapshot's header: metadata, the data files (builds) it reads from with
 * their sizes and checksums, and the mapping of guest memory onto them.
 *
 * Binary layout (little endian), followed by a SHA-256 of everything before it:
 *   magic "WRNMEMH1" | version u32 | blockSize u32 | memorySize u64 | generation u32
 *   | buildId 16B | baseBuildId 16B | buildCount u32 | rangeCount u32
 *   | builds: (buildId 16B, fileSize u64, sha256 32B) × buildCount
 *   | ranges: (offset u64, length u64, buildId 16B, buildOffset u64) × rangeCount
 */
export interface MemoryHeader {
  version: number;
  blockSize: number;
  memorySize: number;
  /** 0 for a first snapshot; parent's generation + 1 after. */
  generation: number;
  /** The build this snapshot wrote (its diff or full data file). */
  buildId: BuildId;
  /** The first build of this lineage. */
  baseBuildId: BuildId;
  builds: BuildFile[];
  ranges: MemoryRange[];
}

export interface BuildFile {
  buildId: BuildId;
  fileSize: number;
  /** Hex SHA-256 of the whole data file. */
  sha256: string;
}

export const HEADER_VERSION = 1;
export const BLOCK_SIZE = 4096;
const MAGIC = Buffer.from("WRNMEMH1", "ascii");
const FIXED_BYTES = 8 + 4 + 4 + 8 + 4 + 16 + 16 + 4 + 4;
const BUILD_BYTES = 16 + 8 + 32;
const RANGE_BYTES = 8 + 8 + 16 + 8;
const CHECKSUM_BYTES = 32;

/** A header or data file that fails its checks; never restored from. */
export class SnapshotCorruptError extends Error {
  override readonly name = "SnapshotCorruptError";
}

function writeId(buf: Buffer, at: number, id: BuildId): void {
  buf.write(id, at, 16, "hex");
}

function readId(buf: Buffer, at: number): BuildId {
  return buf.subarray(at, at + 16).toString("hex");
}

function readU64(buf: Buffer, at: number): number {
  const value = buf.readBigUInt64LE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new SnapshotCorruptError(`value at ${at} is too large`);
  return Number(value);
}

/** Checks the header's own consistency: mapping invariants and that every referenced build is listed. */
export function validateHeader(header: MemoryHeader): void {
  if (header.version !== HEADER_VERSION)
    throw new SnapshotCorruptError(`unsupported version ${header.version}`);
  if (header.blockSize !== BLOCK_SIZE)
    throw new SnapshotCorruptError(`unsupported block size ${header.blockSize}`);
  try {
    validateMapping(header.ranges, header.memorySize, header.blockSize);
  } catch (err) {
    if (err instanceof MappingError) throw new SnapshotCorruptError(`bad mapping: ${err.message}`);
    throw err;
  }
  const listed = new Map(header.builds.map((b) => [b.buildId, b]));
  for (const id of referencedBuilds(header.ranges)) {
    if (!listed.has(id))
      throw new SnapshotCorruptError(`mapping reads build ${id}, which the header does not list`);
  }
  for (const r of header.ranges) {
    if (r.buildId === ZERO_BUILD) continue;
    const file = listed.get(r.buildId) as BuildFile;
    if (r.buildOffset + r.length > file.fileSize) {
      throw new SnapshotCorruptError(`range at ${r.offset} reads past the end of build ${r.buildId}`);
    }
  }
}

export function serializeHeader(header: MemoryHeader): Buffer {
  validateHeader(header);
  const size = FIXED_BYTES + header.builds.length * BUILD_BYTES + header.ranges.length * RANGE_BYTES;
  const buf = Buffer.alloc(size + CHECKSUM_BYTES);
  let at = 0;
  MAGIC.copy(buf, at);
  at += 8;
  buf.writeUInt32LE(header.version, at);
  buf.writeUInt32LE(header.blockSize, at + 4);
  buf.writeBigUInt64LE(BigInt(header.memorySize), at + 8);
  buf.writeUInt32LE(header.generation, at + 16);
  writeId(buf, at + 20, header.buildId);
  writeId(buf, at + 36, header.baseBuildId);
  buf.writeUInt32LE(header.builds.length, at + 52);
  buf.writeUInt32LE(header.ranges.length, at + 56);
  at += 60;
  for (const b of header.builds) {
    writeId(buf, at, b.buildId);
    buf.writeBigUInt64LE(BigInt(b.fileSize), at + 16);
    buf.write(b.sha256, at + 24, 32, "hex");
    at += BUILD_BYTES;
  }
  for (const r of header.ranges) {
    buf.writeBigUInt64LE(BigInt(r.offset), at);
    buf.writeBigUInt64LE(BigInt(r.length), at + 8);
    writeId(buf, at + 16, r.buildId);
    buf.writeBigUInt64LE(BigInt(r.buildOffset), at + 32);
    at += RANGE_BYTES;
  }
  createHash("sha256").update(buf.subarray(0, size)).digest().copy(buf, size);
  return buf;
}

/** Parses and verifies a header; throws SnapshotCorruptError on any truncation, bit flip or inconsistency. */
export function parseHeader(buf: Buffer): MemoryHeader {
  if (buf.length < FIXED_BYTES + CHECKSUM_BYTES)
    throw new SnapshotCorruptError(`header truncated (${buf.length} bytes)`);
  if (!buf.subarray(0, 8).equals(MAGIC))
    throw new SnapshotCorruptError("not a Wrenn memory header (bad magic)");
  const buildCount = buf.readUInt32LE(60);
  const rangeCount = buf.readUInt32LE(64);
  const size = FIXED_BYTES + buildCount * BUILD_BYTES + rangeCount * RANGE_BYTES;
  if (buf.length !== size + CHECKSUM_BYTES) {
    throw new SnapshotCorruptError(`header is ${buf.length} bytes, its counts say ${size + CHECKSUM_BYTES}`);
  }
  const digest = createHash("sha256").update(buf.subarray(0, size)).digest();
  if (!digest.equals(buf.subarray(size))) throw new SnapshotCorruptError("header checksum mismatch");
  const header: MemoryHeader = {
    version: buf.readUInt32LE(8),
    blockSize: buf.readUInt32LE(12),
    memorySize: readU64(buf, 16),
    generation: buf.readUInt32LE(24),
    buildId: readId(buf, 28),
    baseBuildId: readId(buf, 44),
    builds: [],
    ranges: [],
  };
  let at = FIXED_BYTES;
  for (let i = 0; i < buildCount; i++) {
    header.builds.push({
      buildId: readId(buf, at),
      fileSize: readU64(buf, at + 16),
      sha256: buf.subarray(at + 24, at + 56).toString("hex"),
    });
    at += BUILD_BYTES;
  }
  for (let i = 0; i < rangeCount; i++) {
    header.ranges.push({
      offset: readU64(buf, at),
      length: readU64(buf, at + 8),
      buildId: readId(buf, at + 16),
      buildOffset: readU64(buf, at + 32),
    });
    at += RANGE_BYTES;
  }
  validateHeader(header);
  return header;
}
