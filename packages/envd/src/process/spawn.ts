import { type ChildProcess, spawn } from "node:child_process";
import type { Readable } from "node:stream";
import { describeExit, type ProcessExit } from "./exit-status.js";
import {
  type BackendEvents,
  type ProcessBackend,
  type ProcessLaunch,
  ProcessStateError,
  SpawnError,
} from "./process-backend.js";

/**
 * How long a killed process's output may still drain before envd stops waiting for it:
 * long enough for what is already in the pipe, short enough that a child holding the
 * pipe open does not delay the end event noticeably.
 */
const ABANDON_GRACE_MS = 100;

/** Starts a process with stdout/stderr pipes, and a stdin pipe when `stdin` is true (else /dev/null). */
export async function spawnPiped(
  launch: ProcessLaunch,
  stdin: boolean,
  events: BackendEvents,
): Promise<ProcessBackend> {
  const child = spawn(launch.file, launch.args, {
    cwd: launch.cwd,
    env: launch.env,
    stdio: [stdin ? "pipe" : "ignore", "pipe", "pipe"],
    ...(launch.uid !== undefined ? { uid: launch.uid } : {}),
    ...(launch.gid !== undefined ? { gid: launch.gid } : {}),
  });
  // Listen before anything else: an unhandled 'error' event would take envd down.
  const failed = new Promise<Error>((resolve) => child.once("error", resolve));
  child.on("error", () => {});
  child.stdin?.on("error", () => {});
  if (child.pid === undefined) {
    const err = await failed;
    throw new SpawnError(err.message, { cause: err });
  }
  return new PipedBackend(child, child.pid, events);
}

class PipedBackend implements ProcessBackend {
  readonly isPty = false;
  private exit: ProcessExit | undefined;
  private openOutputs = 0;
  private abandoned = false;
  private ended = false;
  private graceTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly child: ChildProcess,
    readonly pid: number,
    private readonly events: BackendEvents,
  ) {
    for (const [kind, stream] of [
      ["stdout", child.stdout],
      ["stderr", child.stderr],
    ] as const) {
      if (!stream) continue;
      this.openOutputs++;
      stream.on("data", (chunk: Buffer) => events.onData(kind, chunk));
      stream.on("error", () => {});
      stream.on("close", () => {
        this.openOutputs--;
        this.maybeEnd();
      });
    }
    child.on("exit", (code, signal) => {
      this.exit = describeExit(code, signal);
      if (this.abandoned) this.startGrace();
      this.maybeEnd();
    });
  }

  private outputs(): Readable[] {
    return [this.child.stdout, this.child.stderr].filter((s): s is Readable => s !== null);
  }

  pauseOutput(): void {
    for (const s of this.outputs()) s.pause();
  }

  resumeOutput(): void {
    for (const s of this.outputs()) s.resume();
  }

  writeStdin(data: Uint8Array): Promise<void> {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) {
      return Promise.reject(new ProcessStateError("stdin not enabled or closed"));
    }
    return new Promise((resolve, reject) => {
      stdin.write(data, (err) =>
        err
          ? reject(new ProcessStateError(`error writing to stdin of process '${this.pid}': ${err.message}`))
          : resolve(),
      );
    });
  }

  closeStdin(): void {
    // Closing twice, or a process started without stdin, is not an error (as in E2B's envd).
    this.child.stdin?.end();
  }

  writePty(): void {
    throw new ProcessStateError(
      "tty not assigned to process — input should be written to the stdin, not the tty",
    );
  }

  resize(): void {
    throw new ProcessStateError("tty not assigned to process");
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exit) return;
    try {
      this.child.kill(signal);
    } catch {
      // Exited in the meantime; its exit event follows.
    }
  }

  abandonOutput(): void {
    this.abandoned = true;
    if (this.exit) this.startGrace();
  }

  private startGrace(): void {
    if (this.graceTimer || this.ended) return;
    this.graceTimer = setTimeout(() => {
      for (const s of this.outputs()) s.destroy();
      this.openOutputs = 0;
      this.maybeEnd();
    }, ABANDON_GRACE_MS);
  }

  private maybeEnd(): void {
    if (this.ended || !this.exit || this.openOutputs > 0) return;
    this.ended = true;
    clearTimeout(this.graceTimer);
    this.events.onEnd(this.exit);
  }
}
