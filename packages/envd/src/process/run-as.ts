import { constants } from "node:fs";
import { access } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "@wrenn/shared";
import type { LinuxUser } from "../users.js";

const SETPRIV_PATHS = ["/usr/bin/setpriv", "/bin/setpriv", "/usr/sbin/setpriv"];

/** What to exec, and the uid/gid spawn itself must switch to (when no wrapper does). */
export interface RunAsCommand {
  file: string;
  args: string[];
  uid?: number;
  gid?: number;
}

export type RunAs = (user: LinuxUser, cmd: string, args: string[]) => Promise<RunAsCommand>;

async function findSetpriv(): Promise<string | undefined> {
  for (const path of SETPRIV_PATHS) {
    if (
      await access(path, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return path;
  }
  return undefined;
}

/**
 * How envd runs a command as another Linux user. As root it execs through util-linux's
 * `setpriv`, which sets the uid, gid and the user's supplementary groups (initgroups) and
 * then execs the command, so the pid stays the command's. Node's spawn (and node-pty) can
 * only set uid/gid: spawn drops all supplementary groups and node-pty keeps envd's, so
 * they are the fallback where setpriv is missing. A non-root envd can only run commands
 * as itself.
 */
export function createRunAs(logger: Logger, currentUid: number | undefined): RunAs {
  let setpriv: Promise<string | undefined> | undefined;
  let warned = false;
  return async (user, cmd, args) => {
    if (currentUid === undefined || currentUid === user.uid) return { file: cmd, args };
    if (currentUid !== 0) {
      throw new ConnectError(
        `envd runs as uid ${currentUid} and cannot start processes as user '${user.name}'`,
        Code.PermissionDenied,
      );
    }
    setpriv ??= findSetpriv();
    const wrapper = await setpriv;
    if (wrapper) {
      return {
        file: wrapper,
        args: [`--reuid=${user.uid}`, `--regid=${user.gid}`, "--init-groups", "--", cmd, ...args],
      };
    }
    if (!warned) {
      warned = true;
      logger.warn("setpriv not found: processes run without their supplementary groups", {
        paths: SETPRIV_PATHS,
      });
    }
    return { file: cmd, args, uid: user.uid, gid: user.gid };
  };
}
