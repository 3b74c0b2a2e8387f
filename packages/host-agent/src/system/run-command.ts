import { execFile } from "node:child_process";
import { WrennError } from "@wrenn/shared";

export interface CommandResult {
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  /** Text written to the command's stdin (ip -batch, iptables-restore). */
  input?: string;
}

/** A command that failed, with what it printed; drivers turn it into a WrennError with context. */
export class CommandError extends Error {
  override readonly name = "CommandError";
  constructor(
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(`${command} failed (exit ${exitCode}): ${stderr.trim().split("\n").slice(-3).join("; ")}`);
  }
}

/** Runs a program (never through a shell) and returns its output; throws CommandError on failure. */
export function runCommand(
  file: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { timeout: options.timeoutMs ?? 30_000, maxBuffer: 16 * 1024 * 1024, encoding: "utf8" },
      (err, stdout, stderr) => {
        if (err) {
          const code =
            typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null;
          reject(new CommandError([file, ...args].join(" ").slice(0, 200), code, stderr || err.message));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

/** Wraps a CommandError in a WrennError naming what the agent was doing. */
export function commandFailure(what: string, err: unknown): WrennError {
  if (err instanceof WrennError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new WrennError("internal", `${what}: ${message}`, { cause: err });
}
