import { constants } from "node:fs";
import { access, readFile } from "node:fs/promises";
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

export type RunAs = (
  user: LinuxUser,
  cmd: string,
  args: string[],
  options: { pty: boolean },
) => Promise<RunAsCommand>;

/**
 * Whether `/etc/group` lists `name` as a member of any group (its supplementary groups). An
 * unreadable file counts as yes, so the caller keeps the wrapper that asks the system.
 */
export async function hasSupplementaryGroups(name: string, groupFile = "/etc/group"): Promise<boolean> {
  let text: string;
  try {
    text = await readFile(groupFile, "utf8");
  } catch {
    return true;
  }
  for (const line of text.split("\n")) {
    const members = line.split(":")[3];
    if (members?.split(",").includes(name)) return true;
  }
  return false;
}

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
 * they are the fallback where setpriv is missing. A user with no supplementary groups (the
 * image's `user`) needs none set, so a piped process is spawned with its uid/gid directly:
 * one exec fewer per command (~0.1 s under TCG). A non-root envd can only run commands as
 * itself.
 */
export function createRunAs(logger: Logger, currentUid: number | undefined, groupFile = "/etc/group"): RunAs {
  let setpriv: Promise<string | undefined> | undefined;
  let warned = false;
  return async (user, cmd, args, options) => {
    if (currentUid === undefined || currentUid === user.uid) return { file: cmd, args };
    if (currentUid !== 0) {
      throw new ConnectError(
        `envd runs as uid ${currentUid} and cannot start processes as user '${user.name}'`,
        Code.PermissionDenied,
      );
    }
    // libuv's spawn drops all supplementary groups (setgroups(0)) before switching uid/gid.
    if (!options.pty && !(await hasSupplementaryGroups(user.name, groupFile))) {
      return { file: cmd, args, uid: user.uid, gid: user.gid };
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
