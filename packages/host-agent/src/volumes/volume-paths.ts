import { constants } from "node:fs";
import { type FileHandle, lstat, open } from "node:fs/promises";
import { WrennError } from "@wrenn/shared";

/**
 * Paths inside a volume, resolved without ever leaving it. A volume's files are written by
 * untrusted guests, which can make any directory a symbolic link at any moment; the agent
 * works on them as root. So a path is never handed to the kernel whole: each directory is
 * opened with O_NOFOLLOW, and the next part is looked up through that open directory
 * (`/proc/self/fd/<fd>/<name>`, which the kernel resolves from the directory the descriptor
 * holds, not from a path a guest could have swapped since). Symbolic links inside a volume
 * are listed and reported, never followed.
 */

const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
const MAX_PATH = 4096;
const MAX_NAME_BYTES = 255;

/** `"/a//b/"` → `["a", "b"]`; `"/"` → `[]`. Refuses `..`, NUL and over-long paths or names. */
export function volumePathParts(path: string): string[] {
  if (path.length > MAX_PATH) throw new WrennError("invalid_argument", `path is over ${MAX_PATH} characters`);
  if (path.includes("\0")) throw new WrennError("invalid_argument", "path contains a NUL byte");
  const parts = path.split("/").filter((p) => p !== "" && p !== ".");
  for (const part of parts) {
    if (part === "..") throw new WrennError("invalid_argument", `path ${JSON.stringify(path)} contains ".."`);
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw new WrennError(
        "invalid_argument",
        `path part ${JSON.stringify(part)} is over ${MAX_NAME_BYTES} bytes`,
      );
    }
  }
  return parts;
}

/** The canonical form of a path inside a volume: `/a/b`, or `/` for its root. */
export function volumePath(parts: readonly string[]): string {
  return `/${parts.join("/")}`;
}

/** A name inside an open directory, as a path the kernel resolves from that directory. */
export function inDir(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

/** What a failed file system call means to a caller of the content API. */
export function contentError(err: unknown, path: string): WrennError {
  if (err instanceof WrennError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const p = JSON.stringify(path);
  switch (code) {
    case "ENOENT":
    case "ENOTDIR":
      return new WrennError("not_found", `path ${p} not found`);
    case "ELOOP":
      return new WrennError(
        "invalid_argument",
        `path ${p} is or passes through a symbolic link (not followed)`,
      );
    case "EEXIST":
    case "ENOTEMPTY":
      return new WrennError("already_exists", `path ${p} already exists`);
    case "EISDIR":
      return new WrennError("already_exists", `path ${p} is a directory`);
    case "ENOSPC":
    case "EDQUOT":
      return new WrennError("resource_exhausted", "the volume is full");
    case "EACCES":
    case "EPERM":
      return new WrennError("permission_denied", `path ${p}: ${code}`);
    case "ENAMETOOLONG":
      return new WrennError("invalid_argument", `path ${p} is too long`);
    default:
      return new WrennError("internal", `path ${p}: ${(err as Error).message}`, { cause: err });
  }
}

/** Opens a directory (never through a final symbolic link). */
export function openDir(path: string): Promise<FileHandle> {
  return open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
}

/** Opens an entry to read or change it: never through a symbolic link, never blocking on a FIFO. */
export function openEntry(path: string): Promise<FileHandle> {
  return open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
}

/**
 * Opens the directory `parts` names under `root`, one part at a time (see above). The
 * caller closes the handle.
 */
export async function openDirAt(root: string, parts: readonly string[]): Promise<FileHandle> {
  let dir = await openDir(root);
  for (let i = 0; i < parts.length; i++) {
    try {
      const next = await openDir(inDir(dir, parts[i]));
      await dir.close();
      dir = next;
    } catch (err) {
      // O_DIRECTORY reports a link as "not a directory": say what it is.
      const link = await lstat(inDir(dir, parts[i]))
        .then((st) => st.isSymbolicLink())
        .catch(() => false);
      await dir.close();
      const failed = link ? Object.assign(new Error("link"), { code: "ELOOP" }) : err;
      throw contentError(failed, volumePath(parts.slice(0, i + 1)));
    }
  }
  return dir;
}
