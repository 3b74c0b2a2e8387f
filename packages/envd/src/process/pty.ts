import { closeSync, constants, openSync } from "node:fs";
import type { Socket } from "node:net";
import { type IPty, type IPtyForkOptions, spawn } from "node-pty";
import { describeExit, signalName } from "./exit-status.js";
import {
  type BackendEvents,
  type ProcessBackend,
  type ProcessLaunch,
  ProcessStateError,
  SpawnError,
} from "./process-backend.js";

export interface PtySize {
  cols: number;
  rows: number;
}

/** Starts a process on a new pseudo-terminal; its output arrives as `pty` data. */
export function spawnPty(launch: ProcessLaunch, size: PtySize, events: BackendEvents): ProcessBackend {
  const options: IPtyForkOptions = {
    name: launch.env.TERM ?? "xterm-256color",
    cols: size.cols,
    rows: size.rows,
    cwd: launch.cwd,
    env: launch.env,
    // Raw bytes: a chunk may end inside a multi-byte character; the client decodes.
    encoding: null,
    ...(launch.uid !== undefined ? { uid: launch.uid } : {}),
    ...(launch.gid !== undefined ? { gid: launch.gid } : {}),
  };
  let pty: IPty;
  try {
    pty = spawn(launch.file, launch.args, options);
  } catch (err) {
    throw new SpawnError(err instanceof Error ? err.message : String(err), { cause: err });
  }
  return new PtyBackend(pty, events);
}

/**
 * How often a paused terminal checks whether its process is gone. node-pty destroys the
 * terminal 200 ms after the process exits, dropping output still unread; once the process
 * is gone only the kernel's pty buffer remains, so reading it regardless stays bounded.
 */
const PAUSED_EXIT_POLL_MS = 50;
/**
 * After the process exits, how long the terminal must stay silent before envd stops
 * reading it (envd's own hold on it means it never reports the end by itself).
 */
const DRAIN_IDLE_MS = 200;
/**
 * The longest the terminal is kept after its process exited, silent or not: a background
 * process that inherited the terminal and keeps writing must not keep it (and its stream)
 * open for ever.
 */
const DRAIN_MAX_MS = 3000;

class PtyBackend implements ProcessBackend {
  readonly isPty = true;
  readonly pid: number;
  private exited = false;
  private pausedPoll: NodeJS.Timeout | undefined;
  private outputAbandoned = false;
  /** The process has exited (node-pty is ending the terminal): input has nowhere to go. */
  private inputClosed = false;
  private destroyTerminal: (() => void) | undefined;
  private slaveFd: number | undefined;

  constructor(
    private readonly pty: IPty,
    events: BackendEvents,
  ) {
    this.pid = pty.pid;
    // node-pty 1.1 keeps the terminal's read side as `_socket` and the slave's path as `_pty`.
    const internals = pty as unknown as { _socket?: Socket; _pty?: string };
    this.slaveFd = holdSlave(internals._pty);
    if (internals._socket) this.drainBeforeDestroy(internals._socket);
    pty.onData((data: string | Buffer) =>
      events.onData("pty", typeof data === "string" ? Buffer.from(data) : data),
    );
    // node-pty reports the exit only after the terminal's output has been read to its end.
    pty.onExit(({ exitCode, signal }) => {
      this.exited = true;
      this.resumeOutput();
      if (this.slaveFd !== undefined) closeSync(this.slaveFd);
      this.slaveFd = undefined;
      const sig = signalName(signal ?? 0);
      events.onEnd(describeExit(sig ? null : exitCode, sig));
    });
  }

  pauseOutput(): void {
    if (this.exited || this.pausedPoll) return;
    this.pty.pause();
    this.pausedPoll = setInterval(() => {
      if (!isAlive(this.pid)) this.resumeOutput();
    }, PAUSED_EXIT_POLL_MS);
  }

  resumeOutput(): void {
    if (!this.pausedPoll) return;
    clearInterval(this.pausedPoll);
    this.pausedPoll = undefined;
    this.pty.resume();
  }

  writeStdin(): Promise<void> {
    return Promise.reject(
      new ProcessStateError("tty assigned to process — input should be written to the pty, not the stdin"),
    );
  }

  closeStdin(): void {
    throw new ProcessStateError("cannot close stdin for PTY process — send Ctrl+D (0x04) instead");
  }

  writePty(data: Uint8Array): void {
    // Keys typed after the process exited are dropped: envd holds the slave side open to
    // drain output, so the terminal would echo them, and never fall silent while typing goes on.
    if (this.inputClosed) return;
    this.pty.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  }

  resize(cols: number, rows: number): void {
    this.pty.resize(cols, rows);
  }

  kill(signal: NodeJS.Signals): void {
    if (this.exited) return;
    try {
      this.pty.kill(signal);
    } catch {
      // Exited in the meantime; its exit event follows.
    }
  }

  abandonOutput(): void {
    this.outputAbandoned = true;
    this.destroyTerminal?.();
  }

  /**
   * node-pty destroys the terminal 200 ms after the process exits even if output is still
   * unread. Its destroy() without an error is deferred here until the terminal has been
   * silent for DRAIN_IDLE_MS (at most DRAIN_MAX_MS), or the process was killed. From that
   * first destroy() on, input is dropped.
   */
  private drainBeforeDestroy(socket: Socket): void {
    const destroy = socket.destroy.bind(socket);
    let lastDataAt = Date.now();
    let exitedAt = 0;
    socket.on("data", () => {
      lastDataAt = Date.now();
    });
    const check = () => {
      const timer = setTimeout(
        // setImmediate lets pending reads run first, so a stalled loop is not taken for silence.
        () =>
          setImmediate(() => {
            if (socket.destroyed) return;
            const now = Date.now();
            if (now - lastDataAt >= DRAIN_IDLE_MS || now - exitedAt >= DRAIN_MAX_MS) destroy();
            else check();
          }),
        DRAIN_IDLE_MS,
      );
      timer.unref();
    };
    socket.destroy = ((err?: Error) => {
      this.inputClosed = true;
      exitedAt ||= Date.now();
      if (err || this.outputAbandoned || socket.destroyed) return destroy(err);
      this.destroyTerminal ??= () => {
        if (!socket.destroyed) destroy();
      };
      check();
      return socket;
    }) as Socket["destroy"];
  }
}

/**
 * Opens the terminal's slave side for envd itself. When the last slave fd closes, Linux may
 * report EIO on the master while output is still in the tty's buffers, losing the tail of
 * a burst; while envd holds one, the master only sees the data, and envd ends the terminal
 * once the process has exited and the output has gone quiet. O_NOCTTY: envd must not
 * acquire it as its controlling terminal.
 */
function holdSlave(path: string | undefined): number | undefined {
  if (!path) return undefined;
  try {
    return openSync(path, constants.O_RDWR | constants.O_NOCTTY);
  } catch {
    return undefined;
  }
}

/** False once the process is gone (node-pty reaps its children as they exit). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
