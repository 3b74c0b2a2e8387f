import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants, type Stats } from "node:fs";
import {
  type FileHandle,
  link,
  lstat,
  mkdir,
  open,
  readdir,
  readlink,
  rename,
  unlink,
} from "node:fs/promises";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { WrennError } from "@wrenn/shared";
import {
  contentError,
  inDir,
  openDir,
  openDirAt,
  openEntry,
  volumePath,
  volumePathParts,
} from "./volume-paths.js";

/**
 * A volume's files as the content API sees them (E2B's `/volumecontent`): stat, list,
 * make directories, read, write, remove and change owner or mode, all confined to the
 * volume (see volume-paths.ts). New entries belong to the owner of the directory they are
 * made in unless the caller names one, so what the API writes stays writable by the guest
 * user that owns the directory.
 */

export type VolumeEntryType = "file" | "directory" | "symlink" | "unknown";

/** E2B's VolumeEntryStat. */
export interface VolumeEntryStat {
  name: string;
  type: VolumeEntryType;
  path: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  atime: string;
  mtime: string;
  ctime: string;
  target?: string;
}

export interface OwnerAndMode {
  uid?: number | undefined;
  gid?: number | undefined;
  mode?: number | undefined;
}

export interface CreateOptions extends OwnerAndMode {
  /** makeDir: create missing parents (an existing directory is fine); writeFile: overwrite. */
  force?: boolean | undefined;
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;
/** A listing returns at most this many entries (ask for less depth beyond). */
export const MAX_LIST_ENTRIES = 10_000;
const UPLOAD_PREFIX = ".wrenn-upload-";

function typeOf(st: Stats): VolumeEntryType {
  if (st.isFile()) return "file";
  if (st.isDirectory()) return "directory";
  if (st.isSymbolicLink()) return "symlink";
  return "unknown";
}

function entryStat(st: Stats, parts: readonly string[], target?: string): VolumeEntryStat {
  return {
    name: parts.at(-1) ?? "",
    type: typeOf(st),
    path: volumePath(parts),
    size: st.size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    atime: st.atime.toISOString(),
    mtime: st.mtime.toISOString(),
    ctime: st.ctime.toISOString(),
    ...(target === undefined ? {} : { target }),
  };
}

/** Stats a name in an open directory without following it (a link's target is read). */
async function statIn(dir: FileHandle, name: string, parts: readonly string[]): Promise<VolumeEntryStat> {
  const st = await lstat(inDir(dir, name));
  const target = st.isSymbolicLink() ? await readlink(inDir(dir, name)) : undefined;
  return entryStat(st, parts, target);
}

async function withDir<T>(
  root: string,
  parts: readonly string[],
  fn: (dir: FileHandle) => Promise<T>,
): Promise<T> {
  const dir = await openDirAt(root, parts);
  try {
    return await fn(dir);
  } finally {
    await dir.close();
  }
}

/** Splits a path into its parent's parts and its name; the root has no name. */
function split(path: string): { parts: string[]; parent: string[]; name: string | undefined } {
  const parts = volumePathParts(path);
  return { parts, parent: parts.slice(0, -1), name: parts.at(-1) };
}

export class VolumeContent {
  /** @param root the volume's mounted directory */
  constructor(private readonly root: string) {}

  async stat(path: string): Promise<VolumeEntryStat> {
    const { parts, parent, name } = split(path);
    try {
      if (name === undefined) return await withDir(this.root, [], async (d) => entryStat(await d.stat(), []));
      return await withDir(this.root, parent, (dir) => statIn(dir, name, parts));
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
  }

  /** The entries under a directory, `depth` levels down (1: its children). */
  async list(path: string, depth = 1): Promise<VolumeEntryStat[]> {
    const parts = volumePathParts(path);
    const out: VolumeEntryStat[] = [];
    const walk = async (dir: FileHandle, at: string[], left: number): Promise<void> => {
      const names = (await readdir(inDir(dir))).sort();
      for (const name of names) {
        if (out.length >= MAX_LIST_ENTRIES) {
          throw new WrennError("invalid_argument", `over ${MAX_LIST_ENTRIES} entries: list with less depth`);
        }
        const entry = await statIn(dir, name, [...at, name]).catch(() => undefined); // gone meanwhile
        if (!entry) continue;
        out.push(entry);
        if (entry.type !== "directory" || left <= 1) continue;
        const child = await openDir(inDir(dir, name)).catch(() => undefined); // swapped meanwhile
        if (!child) continue;
        try {
          await walk(child, [...at, name], left - 1);
        } finally {
          await child.close();
        }
      }
    };
    try {
      await withDir(this.root, parts, (dir) => walk(dir, parts, depth));
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
    return out;
  }

  async makeDir(path: string, options: CreateOptions = {}): Promise<VolumeEntryStat> {
    const parts = volumePathParts(path);
    if (parts.length === 0) {
      if (options.force) return this.stat("/");
      throw new WrennError("already_exists", 'path "/" already exists');
    }
    let dir = await openDirAt(this.root, []).catch((err: unknown) => {
      throw contentError(err, "/");
    });
    try {
      for (let i = 0; i < parts.length; i++) {
        const name = parts[i] as string;
        const last = i === parts.length - 1;
        const here = volumePath(parts.slice(0, i + 1));
        const existing = await lstat(inDir(dir, name)).catch(() => undefined);
        if (!existing) {
          if (!last && !options.force)
            throw new WrennError("not_found", `path ${JSON.stringify(here)} not found`);
          const owner = await dir.stat();
          await mkdir(inDir(dir, name), { mode: 0o700 }).catch((err: unknown) => {
            throw contentError(err, here);
          });
          const child = await openDir(inDir(dir, name)).catch((err: unknown) => {
            throw contentError(err, here);
          });
          try {
            await child.chown(options.uid ?? owner.uid, options.gid ?? owner.gid);
            await child.chmod(options.mode ?? 0o755);
          } catch (err) {
            await child.close();
            throw contentError(err, here);
          }
          await dir.close();
          dir = child;
        } else if (!existing.isDirectory()) {
          throw new WrennError(
            "already_exists",
            `path ${JSON.stringify(here)} exists and is not a directory`,
          );
        } else {
          if (last && !options.force)
            throw new WrennError("already_exists", `path ${JSON.stringify(here)} already exists`);
          const child = await openDir(inDir(dir, name)).catch((err: unknown) => {
            throw contentError(err, here);
          });
          await dir.close();
          dir = child;
        }
        if (last) return entryStat(await dir.stat(), parts);
      }
    } finally {
      await dir.close().catch(() => {});
    }
    throw new WrennError("internal", "makeDir walked no path");
  }

  /** Opens a regular file to read; the caller closes the handle (its stream does). */
  async openFile(path: string): Promise<{ handle: FileHandle; size: number }> {
    const { parts, parent, name } = split(path);
    if (name === undefined) throw new WrennError("invalid_argument", 'path "/" is a directory');
    try {
      return await withDir(this.root, parent, async (dir) => {
        const handle = await openEntry(inDir(dir, name));
        const st = await handle.stat();
        if (!st.isFile()) {
          await handle.close();
          throw new WrennError(
            "invalid_argument",
            `path ${JSON.stringify(volumePath(parts))} is not a regular file`,
          );
        }
        return { handle, size: st.size };
      });
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
  }

  /**
   * Writes `body` to a file: into a new file beside it, which then takes the name (so a
   * reader never sees half a file). An existing file is replaced only with `force`.
   */
  async writeFile(path: string, body: Readable, options: CreateOptions = {}): Promise<VolumeEntryStat> {
    const { parts, parent, name } = split(path);
    const shown = JSON.stringify(volumePath(parts));
    if (name === undefined) throw new WrennError("already_exists", 'path "/" is a directory');
    try {
      return await withDir(this.root, parent, async (dir) => {
        const existing = await lstat(inDir(dir, name)).catch(() => undefined);
        if (existing && !existing.isFile())
          throw new WrennError("already_exists", `path ${shown} exists and is not a file`);
        if (existing && !options.force) {
          throw new WrennError("already_exists", `path ${shown} already exists (force overwrites it)`);
        }
        const tmp = `${UPLOAD_PREFIX}${randomBytes(8).toString("hex")}`;
        const owner = await dir.stat();
        const handle = await open(inDir(dir, tmp), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        try {
          await handle.chown(options.uid ?? owner.uid, options.gid ?? owner.gid);
          await handle.chmod(options.mode ?? 0o644);
          await pipeline(body, handle.createWriteStream());
          if (options.force) await rename(inDir(dir, tmp), inDir(dir, name));
          else {
            // link() never replaces: a file made under the name meanwhile is not overwritten.
            await link(inDir(dir, tmp), inDir(dir, name));
            await unlink(inDir(dir, tmp));
          }
        } catch (err) {
          await handle.close().catch(() => {});
          await unlink(inDir(dir, tmp)).catch(() => {});
          throw err;
        }
        return statIn(dir, name, parts);
      });
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
  }

  /** Removes a file, link or directory (with what is in it); never the volume's root. */
  async remove(path: string): Promise<void> {
    const { parts, parent, name } = split(path);
    if (name === undefined) throw new WrennError("invalid_argument", "the volume's root cannot be removed");
    try {
      await withDir(this.root, parent, async (dir) => {
        const st = await lstat(inDir(dir, name));
        if (st.isDirectory()) await removeTree(dir, name);
        else await unlink(inDir(dir, name));
      });
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
  }

  /** Changes owner and/or mode; a symbolic link's own metadata is not changed (refused). */
  async update(path: string, change: OwnerAndMode): Promise<VolumeEntryStat> {
    const { parts, parent, name } = split(path);
    try {
      return await withDir(this.root, parent, async (dir) => {
        const handle = name === undefined ? await openDir(inDir(dir)) : await openEntry(inDir(dir, name));
        try {
          const st = await handle.stat();
          if (change.uid !== undefined || change.gid !== undefined) {
            await handle.chown(change.uid ?? st.uid, change.gid ?? st.gid);
          }
          if (change.mode !== undefined) await handle.chmod(change.mode);
          return entryStat(await handle.stat(), parts);
        } finally {
          await handle.close();
        }
      });
    } catch (err) {
      throw contentError(err, volumePath(parts));
    }
  }
}

/**
 * Removes a directory tree with coreutils' rm, which walks it by descriptors (a directory
 * swapped for a link while it runs is unlinked, not followed) and stays on this file system.
 * It is handed the open parent directory as its fd 3.
 */
function removeTree(dir: FileHandle, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("rm", ["-rf", "--one-file-system", "--", `/proc/self/fd/3/${name}`], {
      stdio: ["ignore", "ignore", "pipe", dir.fd],
    });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => {
      if (code === 0) resolve();
      else reject(new WrennError("internal", `remove ${name}: ${stderr.trim() || `rm exited ${code}`}`));
    });
  });
}
