import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";

export interface ChildServer {
  port: number;
  pid: number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  stop(graceMs?: number): Promise<void>;
}

export interface ChildServerOptions {
  cwd: string;
  /** Matches the line that announces the port; group 1 is the port. */
  readyLine: RegExp;
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

/** Bytes of the child's stderr kept for the error message if it dies before it is ready. */
const STDERR_TAIL = 4096;

/**
 * Starts a server as a child process and waits for its ready line on stdout. Benchmarks
 * run servers out of process so client and server do not share one event loop.
 */
export async function startChildServer(
  command: string,
  args: string[],
  options: ChildServerOptions,
): Promise<ChildServer> {
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  const exited = once(child, "exit");
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${command} did not become ready in ${options.timeoutMs ?? 30_000} ms\n${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (d: string) => {
      stdout += d;
      const match = options.readyLine.exec(stdout);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${command} exited (${code ?? signal}) before it was ready\n${stderr}`));
    });
  });
  // Keep draining stdout so a chatty server never blocks on a full pipe.
  child.stdout?.resume();
  return {
    port,
    pid: child.pid as number,
    async stop(graceMs = 3000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
