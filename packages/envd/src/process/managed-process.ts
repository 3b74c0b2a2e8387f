import { type ChildProcess, spawn } from "node:child_process";
import { type IPty, spawn as spawnPty } from "node-pty";
import { describeExit, type ProcessExit, signalName } from "./exit-status.js";

export type OutputKind = "stdout" | "stderr" | "pty";

export interface ProcessSubscriber {
  onData(kind: OutputKind, data: Uint8Array): void;
  onEnd(exit: ProcessExit): void;
}

/** What to run and how, fully resolved (user, cwd, environment already decided). */
export interface ProcessLaunch {
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  /** Set only when the process must change identity (envd runs as root). */
  uid?: number | undefined;
  gid?: number | undefined;
  pty?: { cols: number; rows: number } | undefined;
  /** Keep a stdin pipe open for SendInput (pipes only; a PTY always takes input). */
  stdin: boolean;
}

/** The request's view of the process, reported by List and kept for Connect. */
export interface ProcessDescription {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd: string | undefined;
  tag: string | undefined;
}

/**
 * One process started by envd, with its output fanned out to any number of
 * subscribers (the Start stream, later Connect streams). Output is paused while any
 * subscriber is backed up, so a slow client slows the process instead of growing memory.
 */
export class ManagedProcess {
  private readonly subscribers = new Set<ProcessSubscriber>();
  private pressured = 0;
  private exitInfo: ProcessExit | undefined;
  private readonly exitWaiters: ((exit: ProcessExit) => void)[] = [];

  private constructor(
    readonly pid: number,
    readonly description: ProcessDescription,
    private readonly child: ChildProcess | undefined,
    private readonly pty: IPty | undefined,
  ) {}

  static start(launch: ProcessLaunch, description: ProcessDescription): ManagedProcess {
    return launch.pty
      ? ManagedProcess.startPty(launch, description)
      : ManagedProcess.startPiped(launch, description);
  }

  private static startPiped(launch: ProcessLaunch, description: ProcessDescription): ManagedProcess {
    const child = spawn(launch.file, launch.args, {
      cwd: launch.cwd,
      env: launch.env,
      stdio: [launch.stdin ? "pipe" : "ignore", "pipe", "pipe"],
      ...(launch.uid !== undefined ? { uid: launch.uid } : {}),
      ...(launch.gid !== undefined ? { gid: launch.gid } : {}),
    });
    if (child.pid === undefined) {
      // spawn reports failure asynchronously; surface it now with its reason.
      throw new Error(`cannot start ${launch.file}: spawn failed`);
    }
    const proc = new ManagedProcess(child.pid, description, child, undefined);
    child.stdout?.on("data", (chunk: Buffer) => proc.emit("stdout", chunk));
    child.stderr?.on("data", (chunk: Buffer) => proc.emit("stderr", chunk));
    // A closed stdin (process exited, or closed it) must not crash envd.
    child.stdin?.on("error", () => {});
    child.on("error", () => {});
    // "close" waits for the output pipes too, so the end event follows the last byte.
    child.on("close", (code, signal) => proc.finish(describeExit(code, signal)));
    return proc;
  }

  private static startPty(launch: ProcessLaunch, description: ProcessDescription): ManagedProcess {
    const size = launch.pty ?? { cols: 80, rows: 24 };
    const pty = spawnPty(launch.file, launch.args, {
      name: launch.env.TERM ?? "xterm-256color",
      cols: size.cols,
      rows: size.rows,
      cwd: launch.cwd,
      env: launch.env,
      ...(launch.uid !== undefined ? { uid: launch.uid } : {}),
      ...(launch.gid !== undefined ? { gid: launch.gid } : {}),
      encoding: null,
    } as Parameters<typeof spawnPty>[2]);
    const proc = new ManagedProcess(pty.pid, description, undefined, pty);
    pty.onData((data: string | Buffer) =>
      proc.emit("pty", typeof data === "string" ? Buffer.from(data) : data),
    );
    pty.onExit(({ exitCode, signal }) => {
      const sig = signal ? signalName(signal) : null;
      // node-pty delivers exit before the last output is drained; let pending data events run first.
      setTimeout(() => proc.finish(describeExit(sig ? null : exitCode, sig)), 20);
    });
    return proc;
  }

  get tag(): string | undefined {
    return this.description.tag;
  }

  get isPty(): boolean {
    return this.pty !== undefined;
  }

  get exit(): ProcessExit | undefined {
    return this.exitInfo;
  }

  /** Resolves with the exit once the process has ended and its output is drained. */
  waitExit(): Promise<ProcessExit> {
    if (this.exitInfo) return Promise.resolve(this.exitInfo);
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  subscribe(subscriber: ProcessSubscriber): () => void {
    if (this.exitInfo) {
      subscriber.onEnd(this.exitInfo);
      return () => {};
    }
    this.subscribers.add(subscriber);
    return () => {
      this.subscribers.delete(subscriber);
    };
  }

  /** A subscriber reports it is backed up (true) or drained (false). */
  setPressure(pressured: boolean): void {
    const before = this.pressured > 0;
    this.pressured = Math.max(0, this.pressured + (pressured ? 1 : -1));
    const after = this.pressured > 0;
    if (before === after) return;
    if (after) {
      this.child?.stdout?.pause();
      this.child?.stderr?.pause();
      this.pty?.pause();
    } else {
      this.child?.stdout?.resume();
      this.child?.stderr?.resume();
      this.pty?.resume();
    }
  }

  private emit(kind: OutputKind, data: Uint8Array): void {
    for (const s of this.subscribers) s.onData(kind, data);
  }

  private finish(exit: ProcessExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    for (const s of this.subscribers) s.onEnd(exit);
    this.subscribers.clear();
    for (const w of this.exitWaiters.splice(0)) w(exit);
  }

  writeStdin(data: Uint8Array): Promise<void> {
    if (this.pty) throw new ProcessInputError("the process has a terminal: send input to the pty, not stdin");
    const stdin = this.child?.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) throw new ProcessInputError("stdin is not open");
    return new Promise((resolve, reject) => {
      stdin.write(data, (err) =>
        err ? reject(new ProcessInputError(`write to stdin failed: ${err.message}`)) : resolve(),
      );
    });
  }

  closeStdin(): void {
    if (this.pty) {
      throw new ProcessInputError("cannot close stdin of a terminal process: send Ctrl-D (0x04) instead");
    }
    this.child?.stdin?.end();
  }

  writePty(data: Uint8Array): void {
    if (!this.pty) throw new ProcessInputError("the process has no terminal: send input to stdin");
    this.pty.write(Buffer.from(data));
  }

  resize(cols: number, rows: number): void {
    if (!this.pty) throw new ProcessInputError("the process has no terminal to resize");
    this.pty.resize(cols, rows);
  }

  signal(signal: "SIGTERM" | "SIGKILL"): void {
    if (this.exitInfo) return;
    try {
      if (this.pty) this.pty.kill(signal);
      else this.child?.kill(signal);
    } catch {
      // Already gone; its exit event follows.
    }
  }
}

/** Input sent to a process that cannot take it in that form. */
export class ProcessInputError extends Error {
  override readonly name = "ProcessInputError";
}
