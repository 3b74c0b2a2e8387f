import { execFile } from "node:child_process";
import { join } from "node:path";

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
