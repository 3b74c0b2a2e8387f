import { chown, mkdir, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { errnoCode, isNotFound } from "./fs-errors.js";

export class NotADirectoryError extends Error {
  override readonly name = "NotADirectoryError";
  readonly code = "ENOTDIR";
}

function ancestry(path: string): string[] {
  const chain: string[] = [];
  for (let p = path; p !== "/" && p !== "."; p = dirname(p)) chain.push(p);
  return chain.reverse();
}

/**
 * mkdir -p that chowns every directory it creates to the user (and only those), so files
 * written for a user land in directories that user owns.
 */
export async function ensureDirs(path: string, uid: number, gid: number): Promise<void> {
  for (const dir of ancestry(path)) {
    const info = await stat(dir).catch((err: unknown) => {
      if (isNotFound(err)) return undefined;
      throw err;
    });
    if (info) {
      if (!info.isDirectory()) throw new NotADirectoryError(`path is a file: ${dir}`);
      continue;
    }
    try {
      await mkdir(dir, { mode: 0o755 });
    } catch (err) {
      // Another request may have created it in between; still chown it below.
      if (errnoCode(err) !== "EEXIST") throw err;
    }
    await chownIfNeeded(dir, uid, gid);
  }
}

/** False when envd is not root and already is that user (development mode): nothing to change. */
export function needsChown(uid: number): boolean {
  const self = process.getuid?.();
  return self === 0 || self !== uid;
}

async function chownIfNeeded(path: string, uid: number, gid: number): Promise<void> {
  if (needsChown(uid)) await chown(path, uid, gid);
}
