import type { LinuxUser } from "../users.js";

/**
 * PATH for every process, before envd's env vars and the request's. E2B's envd passes on
 * its own PATH; envd's environment is not read outside main.ts, so this is the usual
 * Debian root PATH instead (login shells reset it from /etc/profile anyway).
 */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/**
 * The environment of a new process, later entries overriding earlier ones: PATH, the image's
 * environment (/etc/environment in a VM), the user's HOME/USER/LOGNAME, then the sandbox's
 * env vars (from /init), then the request's. A terminal gets TERM=xterm-256color unless one
 * of those sets it.
 */
export function buildProcessEnv(
  user: LinuxUser,
  imageEnv: Record<string, string>,
  sandboxEnv: Record<string, string>,
  requestEnv: Record<string, string>,
  forPty: boolean,
): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    ...imageEnv,
    HOME: user.home,
    USER: user.name,
    LOGNAME: user.name,
    ...(forPty ? { TERM: "xterm-256color" } : {}),
    ...sandboxEnv,
    ...requestEnv,
  };
}
