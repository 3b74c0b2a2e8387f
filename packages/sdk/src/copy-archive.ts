import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { lstat, realpath } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import { WrennCopySourceError } from "./errors.js";
import type { CopyArchive } from "./templates.js";

const gzipAsync = promisify(gzip);

/**
 * Every entry's mtime in an archive (2000-01-01): the archive's hash, which names it on the
 * server and keys the step cache, then depends on content, names and modes only.
 */
const FIXED_MTIME = "@946684800";
/** Archives are built in memory; a copy source is application files, not a disk image. */
const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;

/** `src` as a clean relative path inside `contextDir`, or WrennCopySourceError. */
export async function copySourcePath(src: string, contextDir: string): Promise<string> {
  if (isAbsolute(src)) {
    throw new WrennCopySourceError(`copy source ${JSON.stringify(src)} must be relative to ${contextDir}`);
  }
  const root = await realpath(contextDir);
  const rel = relative(root, resolve(root, src));
  const outside = (p: string) => p === ".." || p.startsWith(`..${sep}`) || isAbsolute(p);
  if (rel === "" || outside(rel)) {
    throw new WrennCopySourceError(
      `copy source ${JSON.stringify(src)} must name something inside ${root}, not the directory itself or above it`,
    );
  }
  await lstat(resolve(root, rel)).catch(() => {
    throw new WrennCopySourceError(
      `copy source ${JSON.stringify(src)}: ${resolve(root, rel)} does not exist`,
    );
  });
  // Through a symlinked parent the path could still lead out of the context.
  const parent = await realpath(resolve(root, rel, ".."));
  if (outside(relative(root, parent))) {
    throw new WrennCopySourceError(
      `copy source ${JSON.stringify(src)} leads outside ${root} through a symlink`,
    );
  }
  return rel.split(sep).join("/");
}

/**
 * Packs `src` (relative to `contextDir`) into a tar.gz that keeps the src prefix (`app` →
 * entries `app/...`), with the system's GNU tar: entries sorted, owned by 0:0, one fixed
 * mtime, so the same files always give the same sha256.
 */
export async function packCopySource(src: string, contextDir: string = process.cwd()): Promise<CopyArchive> {
  const path = await copySourcePath(src, contextDir);
  const { stdout } = await promisify(execFile)(
    "tar",
    [
      "-c",
      "--sort=name",
      `--mtime=${FIXED_MTIME}`,
      "--owner=0",
      "--group=0",
      "--numeric-owner",
      "-C",
      await realpath(contextDir),
      "--",
      path,
    ],
    { encoding: "buffer", maxBuffer: MAX_ARCHIVE_BYTES },
  );
  const body = new Uint8Array(await gzipAsync(stdout));
  return { hash: createHash("sha256").update(body).digest("hex"), body, src: path };
}
