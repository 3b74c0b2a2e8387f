import { writeFile } from "node:fs/promises";
import type { EnvdContext } from "../context.js";

/**
 * OOM score of user processes: above envd's, so the kernel's OOM killer picks a runaway
 * command before the daemon that serves the sandbox (E2B's envd uses the same value).
 */
const USER_OOM_SCORE_ADJ = "100";

/**
 * Puts a new process in its cgroup and sets its OOM score. Failures are logged, never
 * fatal: the process runs either way. The OOM score is left alone outside a VM (--no-vm),
 * where envd shares the host with everything else.
 */
export function placeProcess(ctx: EnvdContext, pid: number, isPty: boolean): void {
  ctx.cgroups.place(pid, isPty ? "pty" : "user").catch((err: unknown) => {
    ctx.logger.warn("cannot place process in its cgroup", { pid, err });
  });
  if (ctx.config.noVm) return;
  writeFile(`/proc/${pid}/oom_score_adj`, USER_OOM_SCORE_ADJ).catch((err: unknown) => {
    ctx.logger.debug("cannot set oom_score_adj", { pid, err });
  });
}
