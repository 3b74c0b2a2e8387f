import { spawn } from "node:child_process";
import type { Logger } from "@wrenn/shared";

/** Where a forwarder sends connections: the exact localhost address the server listens on. */
export interface ForwardTarget {
  family: 4 | 6;
  address: string;
}

export interface SocatForwardOptions {
  port: number;
  /** IPv4 address socat listens on (the guest's external address). */
  listenHost: string;
  target: ForwardTarget;
  logger: Logger;
  /** Called once when socat exits, whoever stopped it. */
  onExit(forward: SocatForward, unexpected: boolean): void;
}

export interface SocatForward {
  readonly port: number;
  readonly pid: number | undefined;
  readonly exited: boolean;
  /** SIGTERM to socat's process group, SIGKILL after `graceMs`; resolves once socat has exited. */
  stop(graceMs: number): Promise<void>;
}

/** socat's own error output kept for the exit log; bounded so a chatty socat costs nothing. */
const STDERR_TAIL_BYTES = 2048;

/** The socat arguments that expose `target` on `listenHost:port`. */
export function socatArgs(port: number, listenHost: string, target: ForwardTarget): string[] {
  // The target is the address the server bound, not "localhost": a server on 127.0.0.5 is not
  // reachable at 127.0.0.1. The listener is always IPv4 on the external address, as in E2B.
  const connect = target.family === 6 ? `TCP6:[${target.address}]:${port}` : `TCP4:${target.address}:${port}`;
  return [`TCP4-LISTEN:${port},bind=${listenHost},reuseaddr,fork`, connect];
}

/** How long stop waits for SIGKILLed connection children to disappear. */
const GROUP_EXIT_WAIT_MS = 2000;

/** Resolves once no process is left in group `pgid` (or after `timeoutMs`). */
async function groupGone(pgid: number | undefined, timeoutMs: number): Promise<void> {
  if (pgid === undefined) return;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * Starts one socat forwarding `listenHost:port` to the target. socat leads its own process
 * group (detached), so stopping it also ends the children it forks per connection.
 */
export function startSocatForward(options: SocatForwardOptions): SocatForward {
  const { port, logger } = options;
  const args = socatArgs(port, options.listenHost, options.target);
  const child = spawn("socat", args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let stderrTail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL_BYTES);
  });

  let exited = false;
  let stopping = false;
  let resolveExit: () => void = () => {};
  const exitPromise = new Promise<void>((resolve) => {
    resolveExit = resolve;
  });
  const settle = (fields: Record<string, unknown>) => {
    if (exited) return;
    exited = true;
    const unexpected = !stopping;
    if (unexpected)
      logger.warn("port forwarder exited", { port, args, ...fields, stderr: stderrTail.trim() });
    else logger.debug("port forwarder stopped", { port, ...fields });
    resolveExit();
    options.onExit(forward, unexpected);
  };
  // 'exit', not 'close': connection children may still hold stderr open for a moment.
  child.on("exit", (code, signal) => settle({ code, signal }));
  child.on("error", (err) => {
    // A spawn failure (socat missing) never emits 'exit'.
    if (child.pid === undefined) settle({ err });
  });

  const signalGroup = (signal: NodeJS.Signals) => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // ESRCH: the group is already gone.
    }
  };

  const forward: SocatForward = {
    port,
    pid: child.pid,
    get exited() {
      return exited;
    },
    async stop(graceMs) {
      if (exited) return;
      stopping = true;
      signalGroup("SIGTERM");
      const timer = setTimeout(() => signalGroup("SIGKILL"), graceMs);
      await exitPromise;
      clearTimeout(timer);
      // Connection children that outlived socat's SIGTERM handling; a killed process is
      // only gone once the kernel has torn it down, so wait for the group to be empty.
      signalGroup("SIGKILL");
      await groupGone(child.pid, GROUP_EXIT_WAIT_MS);
    },
  };
  return forward;
}
