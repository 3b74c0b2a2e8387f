import { execFile } from "node:child_process";
import { join } from "node:path";
import { spawn as spawnPty } from "node-pty";

const WRENN_BIN = join(import.meta.dirname, "../../packages/cli/bin/wrenn.mjs");

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `wrenn` binary as a user would (a child process), with only the given env on top of PATH. */
export function runWrenn(
  args: string[],
  env: Record<string, string>,
  options: { input?: string | Buffer; timeoutMs?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [WRENN_BIN, ...args],
      {
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
        timeout: options.timeoutMs ?? 300_000,
        maxBuffer: 64 * 1024 * 1024,
        encoding: "buffer",
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        if (err && typeof err.code !== "number") return reject(err);
        resolve({ code, stdout: stdout.toString("utf8"), stderr: stderr.toString("utf8") });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
    else child.stdin?.end();
  });
}

export interface TerminalExit {
  /** The process's exit code (0 when a signal ended it). */
  exitCode: number;
  /** The signal that ended it, 0 for none. */
  signal: number;
}

/** The `wrenn` binary running in a pseudo-terminal, driven as a person at a keyboard would. */
export interface WrennTerminal {
  /** Everything the terminal has shown so far, escape sequences included. */
  readonly output: string;
  /** Set once the process has exited. */
  readonly exit: TerminalExit | undefined;
  /** Resolves when the process exits. */
  readonly exited: Promise<TerminalExit>;
  /** Types into the terminal (a key press is its bytes: Enter is "\r", Ctrl-C "\x03"). */
  write(data: string): void;
  /** Resizes the terminal, which sends SIGWINCH to the process as a window resize does. */
  resize(cols: number, rows: number): void;
  /**
   * Resolves with the first match of `pattern` (no `g` flag) in the whole output, as soon as
   * there is one; rejects after `timeoutMs` or when the process exits first, showing the output.
   */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Ends the process (SIGHUP, as closing a terminal window does) if it is still running. */
  close(): void;
}

/** Runs the real `wrenn` binary in a new pseudo-terminal of the given size, with only `env` on top of PATH and HOME. */
export function openWrennTerminal(
  args: string[],
  env: Record<string, string>,
  size: { cols: number; rows: number },
): WrennTerminal {
  const term = spawnPty(process.execPath, [WRENN_BIN, ...args], {
    name: "xterm-256color",
    cols: size.cols,
    rows: size.rows,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
  });
  let output = "";
  let exit: TerminalExit | undefined;
  const waiters = new Set<() => void>();
  term.onData((data) => {
    output += data;
    for (const check of waiters) check();
  });
  const exited = new Promise<TerminalExit>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      exit = { exitCode, signal: signal ?? 0 };
      for (const check of waiters) check();
      resolve(exit);
    });
  });
  const tail = () => JSON.stringify(output.slice(-2000));

  return {
    get output() {
      return output;
    },
    get exit() {
      return exit;
    },
    exited,
    write: (data) => term.write(data),
    resize: (cols, rows) => term.resize(cols, rows),
    close: () => {
      if (!exit) term.kill();
    },
    waitFor(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        const check = () => {
          const match = output.match(pattern);
          if (match) {
            done();
            resolve(match);
          } else if (exit) {
            done();
            reject(
              new Error(
                `wrenn exited (${JSON.stringify(exit)}) before ${pattern} appeared; output: ${tail()}`,
              ),
            );
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${pattern} did not appear within ${timeoutMs} ms; output: ${tail()}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
  };
}
