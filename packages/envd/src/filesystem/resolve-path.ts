import { isAbsolute, join, resolve } from "node:path";
import type { LinuxUser } from "../users.js";

export class InvalidPathError extends Error {
  override readonly name = "InvalidPathError";
}

/**
 * Turns a path from a request into an absolute one, as E2B's envd does: an empty path
 * means the default workdir, `~` and `~/x` expand to the user's home, and relative paths
 * resolve against the home (not the workdir). Absolute paths are returned untouched.
 */
export function expandAndResolve(path: string, user: LinuxUser, defaultWorkdir: string | undefined): string {
  if (path.includes("\0")) throw new InvalidPathError(`path contains a NUL byte`);
  let p = path === "" ? (defaultWorkdir ?? "") : path;
  if (p.startsWith("~")) {
    if (p.length > 1 && p[1] !== "/" && p[1] !== "\\") {
      throw new InvalidPathError(
        `failed to expand path '${p}' for user '${user.name}': cannot expand user-specific home dir`,
      );
    }
    p = join(user.home, p.slice(1));
  }
  if (isAbsolute(p)) return p;
  return resolve(user.home, p);
}
