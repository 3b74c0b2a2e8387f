import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz";

/** Random lowercase alphanumeric string (DNS-label safe), unbiased. */
export function randomId(length: number): string {
  let out = "";
  while (out.length < length) {
    for (const byte of randomBytes(length * 2)) {
      // 252 is the largest multiple of 36 below 256: rejecting above it keeps the draw uniform.
      if (byte < 252 && out.length < length) out += ALPHABET[byte % 36];
    }
  }
  return out;
}

/** Sandbox ids are DNS-label safe so they can appear in `<port>-<id>.<domain>`. */
export function newSandboxId(): string {
  return `i${randomId(19)}`;
}

export function newRequestId(): string {
  return randomId(16);
}
