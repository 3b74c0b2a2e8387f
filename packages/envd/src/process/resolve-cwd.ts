import { stat } from "node:fs/promises";
import { isAbsolute, join, resolve } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import type { LinuxUser } from "../users.js";

/**
 * The working directory for a new process, as E2B's envd picks it: the requested one,
 * else the default workdir, else the user's home; `~` expands to the home and relative
 * paths resolve against it. A missing or non-directory cwd is InvalidArgument.
 */
export async function resolveCwd(
  requested: string | undefined,
  user: LinuxUser,
  defaultWorkdir: string | undefined,
): Promise<string> {
  let path = requested || defaultWorkdir || "";
  if (path.includes("\0")) throw new ConnectError("cwd contains a NUL byte", Code.InvalidArgument);
  if (path.startsWith("~")) {
    if (path.length > 1 && path[1] !== "/") {
      throw new ConnectError(
        `failed to expand path '${path}' for user '${user.name}': cannot expand user-specific home dir`,
        Code.InvalidArgument,
      );
    }
    path = join(user.home, path.slice(1));
  }
  const cwd = isAbsolute(path) ? path : resolve(user.home, path);
  const info = await stat(cwd).catch(() => undefined);
  if (!info) throw new ConnectError(`cwd '${cwd}' does not exist`, Code.InvalidArgument);
  if (!info.isDirectory()) throw new ConnectError(`cwd '${cwd}' is not a directory`, Code.InvalidArgument);
  return cwd;
}
