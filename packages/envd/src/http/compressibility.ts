import type { FileHandle } from "node:fs/promises";
import { constants, deflateRawSync } from "node:zlib";

/** How much of a file's start is tried: enough to tell text from media or random bytes. */
const SAMPLE_BYTES = 64 * 1024;
/** Below this a file is sent as asked: the try would cost more than it saves. */
const MIN_SIZE_BYTES = 256 * 1024;
/** Compressed to more than this share of its size, the sample counts as incompressible. */
const MAX_RATIO = 0.9;

/**
 * Whether gzip would shrink the file: its first 64 KiB compressed at the level downloads
 * use. Already-compressed or random data (archives, images, model weights) only costs CPU
 * to gzip (in a guest under emulation, most of a download's time) and gains nothing on the
 * wire, so it goes out as identity, which any Accept-Encoding that allows identity takes.
 */
export async function worthCompressing(handle: FileHandle, size: number): Promise<boolean> {
  if (size < MIN_SIZE_BYTES) return true;
  const sample = Buffer.alloc(SAMPLE_BYTES);
  const { bytesRead } = await handle.read(sample, 0, SAMPLE_BYTES, 0);
  if (bytesRead === 0) return true;
  const packed = deflateRawSync(sample.subarray(0, bytesRead), { level: constants.Z_BEST_SPEED });
  return packed.length <= bytesRead * MAX_RATIO;
}
