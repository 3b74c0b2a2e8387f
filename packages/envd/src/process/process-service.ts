import { stat } from "node:fs/promises";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type Process, type ProcessEvent, type ProcessSelector, Signal } from "@wrenn/proto";
import type { EnvdContext } from "../context.js";
import { userForRequest } from "../filesystem/request-user.js";
import { expandAndResolve, InvalidPathError } from "../filesystem/resolve-path.js";
import type { LinuxUser } from "../users.js";
import { AsyncQueue } from "./async-queue.js";
import type { ProcessExit } from "./exit-status.js";
import { ManagedProcess, type OutputKind, ProcessInputError } from "./managed-process.js";

type EventInit = { event: ProcessEvent["event"] };

/** Output queued per stream before the process is paused. */
const STREAM_HIGH_WATER_BYTES = 4 * 1024 * 1024;
/** How long an ended process stays reachable by Connect (by pid or tag). */
const TERMINATED_RETENTION_MS = 60_000;

function keepaliveIntervalMs(ctx: HandlerContext, fallbackMs: number): number {
  const seconds = Number(ctx.requestHeader.get("keepalive-ping-interval"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : fallbackMs;
}

function endEvent(exit: ProcessExit): EventInit {
  return {
    event: {
      case: "end",
      value: {
        exitCode: exit.exitCode,
        exited: exit.exited,
        status: exit.status,
        ...(exit.error ? { error: exit.error } : {}),
      },
    },
  } as EventInit;
}

function dataEvent(kind: OutputKind, data: Uint8Array): EventInit {
  return { event: { case: "data", value: { output: { case: kind, value: data } } } } as EventInit;
}

/**
 * Follows one process for one stream: a start event, its output, keepalives, then its
 * end. The stream ending early (client gone) never kills the process.
 */
async function* followProcess(
  proc: ManagedProcess,
  ctx: HandlerContext,
  keepaliveMs: number,
  unsubscribeFirst?: () => void,
): AsyncGenerator<{ event: EventInit }> {
  const queue = new AsyncQueue<EventInit>({
    highWaterBytes: STREAM_HIGH_WATER_BYTES,
    sizeOf: (e) =>
      e.event?.case === "data" ? 1024 + ((e.event.value.output.value as Uint8Array)?.byteLength ?? 0) : 64,
    onPressure: (p) => proc.setPressure(p),
  });
  const unsubscribe = proc.subscribe({
    onData: (kind, data) => queue.push(dataEvent(kind, data)),
    onEnd: (exit) => {
      queue.push(endEvent(exit));
      queue.close();
    },
  });
  // The Start handler subscribed before spawning to miss nothing; hand over now.
  unsubscribeFirst?.();
  const keepalive = setInterval(
    () => queue.push({ event: { case: "keepalive", value: {} } } as EventInit),
    keepaliveMs,
  );
  const onAbort = () => queue.close();
  ctx.signal.addEventListener("abort", onAbort);
  try {
    yield { event: { event: { case: "start", value: { pid: proc.pid } } } as EventInit };
    for await (const event of queue) {
      if (ctx.signal.aborted) break;
      yield { event };
    }
  } finally {
    clearInterval(keepalive);
    ctx.signal.removeEventListener("abort", onAbort);
    unsubscribe();
    // A stream that leaves while backed up must not keep the process paused.
    if (queue.isPressured) proc.setPressure(false);
  }
}

/** envd's process.Process service: start, follow, feed and signal processes. */
export function createProcessService(ctx: EnvdContext): Partial<ServiceImpl<typeof Process>> {
  const running = new Map<number, ManagedProcess>();
  const terminated = new Map<number, ManagedProcess>();

  function track(proc: ManagedProcess): void {
    running.set(proc.pid, proc);
    proc.waitExit().then(() => {
      running.delete(proc.pid);
      terminated.set(proc.pid, proc);
      setTimeout(() => {
        if (terminated.get(proc.pid) === proc) terminated.delete(proc.pid);
      }, TERMINATED_RETENTION_MS).unref();
    });
  }

  function find(selector: ProcessSelector | undefined, includeEnded: boolean): ManagedProcess {
    const s = selector?.selector;
    const pools = includeEnded ? [running, terminated] : [running];
    if (s?.case === "pid") {
      for (const pool of pools) {
        const p = pool.get(s.value);
        if (p) return p;
      }
      throw new ConnectError(`process with pid ${s.value} not found`, Code.NotFound);
    }
    if (s?.case === "tag") {
      for (const pool of pools) {
        for (const p of pool.values()) if (p.tag === s.value) return p;
      }
      throw new ConnectError(`process with tag ${s.value} not found`, Code.NotFound);
    }
    throw new ConnectError("a process selector (pid or tag) is required", Code.InvalidArgument);
  }

  async function resolveCwd(requested: string | undefined, user: LinuxUser): Promise<string> {
    let cwd: string;
    try {
      cwd = expandAndResolve(requested ?? "", user, ctx.state.defaultWorkdir ?? user.home);
    } catch (err) {
      if (err instanceof InvalidPathError) throw new ConnectError(err.message, Code.InvalidArgument);
      throw err;
    }
    const info = await stat(cwd).catch(() => null);
    if (!info) throw new ConnectError(`cwd '${cwd}' does not exist`, Code.InvalidArgument);
    if (!info.isDirectory()) throw new ConnectError(`cwd '${cwd}' is not a directory`, Code.InvalidArgument);
    return cwd;
  }

  return {
    async *start(req, handlerCtx) {
      const config = req.process;
      if (!config?.cmd) throw new ConnectError("process.cmd is required", Code.InvalidArgument);
      if (req.pty && (!req.pty.size?.cols || !req.pty.size?.rows)) {
        throw new ConnectError("pty size needs positive cols and rows", Code.InvalidArgument);
      }
      const user = await userForRequest(handlerCtx.requestHeader, ctx.state.defaultUser);
      const cwd = await resolveCwd(config.cwd, user);
      const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        HOME: user.home,
        USER: user.name,
        LOGNAME: user.name,
        ...ctx.state.envVars,
        ...config.envs,
      };
      if (req.pty && !env.TERM) env.TERM = "xterm-256color";
      const asRoot = process.getuid?.() === 0;
      const changeUser = asRoot && user.uid !== 0;
      let proc: ManagedProcess;
      try {
        proc = ManagedProcess.start(
          {
            // setpriv also sets the user's supplementary groups, which spawn's uid/gid cannot.
            file: changeUser ? "setpriv" : config.cmd,
            args: changeUser
              ? [
                  `--reuid=${user.uid}`,
                  `--regid=${user.gid}`,
                  "--init-groups",
                  "--",
                  config.cmd,
                  ...config.args,
                ]
              : config.args,
            cwd,
            env,
            pty: req.pty?.size ? { cols: req.pty.size.cols, rows: req.pty.size.rows } : undefined,
            stdin: req.stdin ?? true,
          },
          { cmd: config.cmd, args: config.args, envs: config.envs, cwd: config.cwd, tag: req.tag },
        );
      } catch (err) {
        throw new ConnectError(
          `cannot start '${config.cmd}': ${err instanceof Error ? err.message : String(err)}`,
          Code.InvalidArgument,
        );
      }
      if (req.tag !== undefined) {
        for (const [pid, old] of terminated) if (old.tag === req.tag) terminated.delete(pid);
      }
      track(proc);
      ctx.cgroups.place(proc.pid, proc.isPty ? "pty" : "user").catch((err: unknown) => {
        ctx.logger.warn("cannot place process in its cgroup", { pid: proc.pid, err });
      });
      // A deadline on the request (Connect-Timeout-Ms) bounds the process's life, as in E2B's envd.
      const timeoutMs = handlerCtx.timeoutMs();
      if (timeoutMs !== undefined && timeoutMs > 0) {
        const timer = setTimeout(() => proc.signal("SIGKILL"), timeoutMs);
        proc.waitExit().then(() => clearTimeout(timer));
      }
      yield* followProcess(proc, handlerCtx, keepaliveIntervalMs(handlerCtx, ctx.config.keepaliveIntervalMs));
    },

    async *connect(req, handlerCtx) {
      const proc = find(req.process, true);
      yield* followProcess(proc, handlerCtx, keepaliveIntervalMs(handlerCtx, ctx.config.keepaliveIntervalMs));
    },

    async list() {
      return {
        processes: [...running.values()].map((p) => ({
          pid: p.pid,
          ...(p.tag !== undefined ? { tag: p.tag } : {}),
          config: {
            cmd: p.description.cmd,
            args: p.description.args,
            envs: p.description.envs,
            ...(p.description.cwd !== undefined ? { cwd: p.description.cwd } : {}),
          },
        })),
      };
    },

    async sendInput(req) {
      const proc = find(req.process, false);
      await deliverInput(proc, req.input?.input);
      return {};
    },

    async streamInput(requests) {
      let proc: ManagedProcess | undefined;
      for await (const req of requests) {
        if (req.event.case === "start") proc = find(req.event.value.process, false);
        else if (req.event.case === "data") {
          if (!proc) throw new ConnectError("the stream must start with a start event", Code.InvalidArgument);
          await deliverInput(proc, req.event.value.input?.input);
        }
      }
      return {};
    },

    async sendSignal(req) {
      const proc = find(req.process, false);
      if (req.signal === Signal.SIGKILL) proc.signal("SIGKILL");
      else if (req.signal === Signal.SIGTERM) proc.signal("SIGTERM");
      else throw new ConnectError(`unsupported signal ${req.signal}`, Code.InvalidArgument);
      return {};
    },

    async update(req) {
      const proc = find(req.process, false);
      if (req.pty?.size) {
        if (!req.pty.size.cols || !req.pty.size.rows) {
          throw new ConnectError("pty size needs positive cols and rows", Code.InvalidArgument);
        }
        try {
          proc.resize(req.pty.size.cols, req.pty.size.rows);
        } catch (err) {
          throw toInputError(err);
        }
      }
      return {};
    },

    async closeStdin(req) {
      const proc = find(req.process, false);
      try {
        proc.closeStdin();
      } catch (err) {
        throw toInputError(err);
      }
      return {};
    },
  };
}

type InputCase = NonNullable<
  Parameters<NonNullable<ServiceImpl<typeof Process>["sendInput"]>>[0]["input"]
>["input"];

async function deliverInput(proc: ManagedProcess, input: InputCase | undefined): Promise<void> {
  try {
    if (input?.case === "stdin") await proc.writeStdin(input.value);
    else if (input?.case === "pty") proc.writePty(input.value);
    else throw new ConnectError("input must be stdin or pty bytes", Code.InvalidArgument);
  } catch (err) {
    throw toInputError(err);
  }
}

function toInputError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ProcessInputError) return new ConnectError(err.message, Code.FailedPrecondition);
  return new ConnectError(err instanceof Error ? err.message : String(err), Code.Internal);
}
