import { execFile } from "node:child_process";
import { WrennError } from "@wrenn/shared";

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Killed (SIGKILL) after this long; default 30 s. */
  timeoutMs?: number;
  /** Text written to the command's stdin (ip -batch, iptables-restore). */
  input?: string;
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** A program that could not run or exited non-zero, with what it printed. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    /** argv, program first. */
    readonly argv: readonly string[],
    /** Exit status; null when it never ran or was killed. */
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    readonly stdout: string,
    readonly stderr: string,
    readonly timedOut: boolean,
    options?: { cause?: unknown },
  ) {
    const how = timedOut ? "timed out" : exitCode !== null ? `exit ${exitCode}` : `signal ${signal ?? "?"}`;
    const said = stderr.trim().split("\n").slice(-4).join("; ");
    super(`${argv.join(" ").slice(0, 160)} failed (${how})${said ? `: ${said}` : ""}`, options);
  }
}

/**
 * Runs a program directly (never through a shell) and returns its output; rejects with
 * CommandError on a non-zero exit, a signal, a timeout or a missing binary.
 */
export function runCommand(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  const argv = [file, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        killSignal: "SIGKILL",
        maxBuffer: 64 * 1024 * 1024,
        encoding: "utf8",
      },
      (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & {
          code?: unknown;
          killed?: boolean;
          signal?: NodeJS.Signals | null;
        };
        const exitCode = typeof e.code === "number" ? e.code : null;
        const timedOut = e.killed === true && exitCode === null;
        // A spawn failure (ENOENT, EACCES) has no stderr: report the errno message instead.
        const text = stderr || (exitCode === null && !timedOut ? e.message : "");
        reject(new CommandError(argv, exitCode, e.signal ?? null, stdout, text, timedOut, { cause: err }));
      },
    );
    // A command that exits before reading its input must not crash us with EPIPE.
    child.stdin?.on("error", () => {});
    child.stdin?.end(options.input ?? "");
  });
}

/** Wraps a failure in a WrennError that says what the agent was doing; WrennErrors pass through. */
export function commandFailure(
  what: string,
  err: unknown,
  code: "internal" | "unavailable" = "internal",
): WrennError {
  if (err instanceof WrennError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WrennError(code, `${what}: ${message}`, { cause: err });
}
