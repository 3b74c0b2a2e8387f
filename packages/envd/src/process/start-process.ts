import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { StartRequest } from "@wrenn/proto";
import type { EnvdContext } from "../context.js";
import { userForRequest } from "../request-user.js";
import { findExecutable } from "./find-executable.js";
import { ManagedProcess, type ProcessSubscription } from "./managed-process.js";
import { placeProcess } from "./placement.js";
import { SpawnError } from "./process-backend.js";
import { buildProcessEnv } from "./process-env.js";
import { toProcessError } from "./process-input.js";
import type { ProcessRegistry } from "./process-registry.js";
import { spawnPty } from "./pty.js";
import { resolveCwd } from "./resolve-cwd.js";
import type { RunAs } from "./run-as.js";
import { spawnPiped } from "./spawn.js";

export interface StartDeps {
  ctx: EnvdContext;
  registry: ProcessRegistry;
  runAs: RunAs;
}

export interface StartedProcess {
  proc: ManagedProcess;
  /** The Start stream's subscription, taken before the spawn so no output is missed. */
  subscription: ProcessSubscription;
}

/**
 * Starts the process a Start request describes: exactly `cmd` with `args` (the SDK sends
 * `/bin/bash -l -c <command>`), as the requesting user, in the resolved cwd, with the
 * sandbox's and the request's env vars. The request's deadline (Connect-Timeout-Ms) bounds
 * the process's life, as in E2B's envd; the stream going away does not.
 */
export async function startProcess(
  deps: StartDeps,
  req: StartRequest,
  hctx: HandlerContext,
): Promise<StartedProcess> {
  const { ctx } = deps;
  const config = req.process;
  if (!config?.cmd) throw new ConnectError("process.cmd is required", Code.InvalidArgument);
  const size = req.pty ? { cols: req.pty.size?.cols ?? 0, rows: req.pty.size?.rows ?? 0 } : undefined;
  if (size && (size.cols < 1 || size.rows < 1 || size.cols > 0xffff || size.rows > 0xffff)) {
    throw new ConnectError("pty size needs cols and rows between 1 and 65535", Code.InvalidArgument);
  }
  const commandLine = [config.cmd, ...config.args].join(" ");

  const user = await userForRequest(hctx.requestHeader, ctx.state.defaultUser);
  const cwd = await resolveCwd(config.cwd, user, ctx.state.defaultWorkdir);
  const env = buildProcessEnv(user, ctx.state.imageEnv, ctx.state.envVars, config.envs, size !== undefined);
  if (!(await findExecutable(config.cmd, cwd, env.PATH ?? ""))) {
    throw new ConnectError(
      `error starting process '${commandLine}': exec: "${config.cmd}": executable file not found in $PATH`,
      Code.InvalidArgument,
    );
  }
  const run = await deps.runAs(user, config.cmd, config.args, { pty: size !== undefined });
  const launch = { file: run.file, args: run.args, cwd, env, uid: run.uid, gid: run.gid };

  const proc = new ManagedProcess({
    cmd: config.cmd,
    args: config.args,
    envs: config.envs,
    cwd: config.cwd,
    tag: req.tag,
  });
  const subscription = proc.subscribe();
  try {
    await proc.launch((events) =>
      size ? spawnPty(launch, size, events) : spawnPiped(launch, req.stdin ?? true, events),
    );
  } catch (err) {
    subscription.unsubscribe();
    if (err instanceof SpawnError) {
      throw new ConnectError(`error starting process '${commandLine}': ${err.message}`, Code.InvalidArgument);
    }
    throw toProcessError(err);
  }

  const pid = proc.pid;
  deps.registry.add(proc);
  placeProcess(ctx, pid, size !== undefined);
  const timeoutMs = hctx.timeoutMs();
  if (timeoutMs !== undefined) {
    const timer = setTimeout(() => proc.signal("SIGKILL"), Math.max(0, timeoutMs));
    timer.unref();
    proc.onEnd(() => clearTimeout(timer));
  }
  // Debug, not info: in a VM envd's log is the serial console, where a line costs ~4 ms of
  // synchronous writing under emulation, twice per command on the exec path.
  ctx.logger.debug("process started", {
    pid,
    command: commandLine,
    user: user.name,
    pty: size !== undefined,
  });
  proc.onEnd((exit) => ctx.logger.debug("process ended", { pid, status: exit.status }));
  return { proc, subscription };
}
