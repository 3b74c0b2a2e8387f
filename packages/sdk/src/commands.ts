import { type ApiClient, apiPath } from "./api-client.js";
import type { ExecWire, ProcessWire } from "./api-types.js";

export interface CommandOptions {
  /** Extra environment variables for this command. */
  envs?: Record<string, string>;
  /** Working directory (default: the user's home). */
  cwd?: string;
  /** User to run as (default: the sandbox's default user, `user`). */
  user?: string;
  /** Kill the command after this many milliseconds (default 60 000; 0 means no limit). */
  timeoutMs?: number;
  /** Bytes or text written to the command's stdin (foreground commands only). */
  stdin?: string;
  /**
   * Called with the command's output. The API runs commands to completion (no streaming
   * endpoint yet), so each callback receives the whole output once the command ends.
   */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

export interface BackgroundCommandOptions extends Omit<CommandOptions, "stdin" | "onStdout" | "onStderr"> {
  background: true;
  /** A name to find or kill the process by. */
  tag?: string;
}

export interface CommandResult {
  exitCode: number;
  /** Output as text (bytes that are not UTF-8 are replaced with U+FFFD; see `stdoutBytes`). */
  stdout: string;
  stderr: string;
  stdoutBytes: Uint8Array;
  stderrBytes: Uint8Array;
  /** Why the command did not run to a normal exit (timeout, signal, could not start), else null. */
  error: string | null;
  pid: number;
}

export interface ProcessInfo {
  pid: number;
  tag: string;
  cmd: string;
  args: string[];
  cwd: string;
}

export type Signal = "SIGTERM" | "SIGKILL";

export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** Extra time the HTTP request gets beyond the command's own timeout. */
const REQUEST_GRACE_MS = 15_000;

function decode(data: string, encoding: "utf8" | "base64"): Uint8Array {
  return encoding === "base64" ? new Uint8Array(Buffer.from(data, "base64")) : new TextEncoder().encode(data);
}

/** A process started with `background: true`. */
export class CommandHandle {
  readonly pid: number;
  readonly tag: string | undefined;
  readonly #commands: Commands;

  constructor(commands: Commands, pid: number, tag: string | undefined) {
    this.#commands = commands;
    this.pid = pid;
    this.tag = tag;
  }

  /** Signals the process (SIGKILL by default). */
  kill(signal: Signal = "SIGKILL"): Promise<void> {
    return this.#commands.kill(this.pid, signal);
  }

  /**
   * Resolves once the process is no longer running. The API does not report a background
   * process's exit code or output, so this polls the process list.
   */
  async wait(options: { pollMs?: number; timeoutMs?: number } = {}): Promise<void> {
    const pollMs = options.pollMs ?? 500;
    const deadline = options.timeoutMs ? Date.now() + options.timeoutMs : Number.POSITIVE_INFINITY;
    for (;;) {
      const running = await this.#commands.list();
      if (!running.some((p) => p.pid === this.pid)) return;
      if (Date.now() + pollMs > deadline) {
        throw new Error(`process ${this.pid} still running after ${options.timeoutMs} ms`);
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}

/** Commands in one sandbox: `/bin/bash -l -c <cmd>`, run to completion or in the background. */
export class Commands {
  readonly #api: ApiClient;
  readonly #sandboxId: string;

  constructor(api: ApiClient, sandboxId: string) {
    this.#api = api;
    this.#sandboxId = sandboxId;
  }

  /** Runs a command to completion and returns its exit code and output (a non-zero exit does not throw). */
  run(cmd: string, options?: CommandOptions & { background?: false }): Promise<CommandResult>;
  /** Starts a command in the background and returns a handle to kill or wait for it. */
  run(cmd: string, options: BackgroundCommandOptions): Promise<CommandHandle>;
  async run(
    cmd: string,
    options: (CommandOptions & { background?: false }) | BackgroundCommandOptions = {},
  ): Promise<CommandResult | CommandHandle> {
    const base = { command: cmd, envs: options.envs, cwd: options.cwd, user: options.user };
    if (options.background) {
      const res = await this.#api.json<{ pid: number }>(
        "POST",
        apiPath("sandboxes", this.#sandboxId, "processes"),
        {
          json: { ...base, tag: options.tag },
        },
      );
      return new CommandHandle(this, res.pid, options.tag);
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    const res = await this.#api.json<ExecWire>("POST", apiPath("sandboxes", this.#sandboxId, "exec"), {
      json: { ...base, timeout_ms: timeoutMs > 0 ? timeoutMs : undefined, stdin: options.stdin },
      timeoutMs: timeoutMs > 0 ? Math.max(timeoutMs + REQUEST_GRACE_MS, this.#api.timeoutMs) : 0,
    });
    const stdoutBytes = decode(res.stdout, res.stdout_encoding);
    const stderrBytes = decode(res.stderr, res.stderr_encoding);
    const result: CommandResult = {
      exitCode: res.exit_code,
      stdout: Buffer.from(stdoutBytes).toString("utf8"),
      stderr: Buffer.from(stderrBytes).toString("utf8"),
      stdoutBytes,
      stderrBytes,
      error: res.error,
      pid: res.pid,
    };
    if (result.stdout) options.onStdout?.(result.stdout);
    if (result.stderr) options.onStderr?.(result.stderr);
    return result;
  }

  /** Processes started through the API that are still running. */
  async list(): Promise<ProcessInfo[]> {
    const res = await this.#api.json<{ items: ProcessWire[] }>(
      "GET",
      apiPath("sandboxes", this.#sandboxId, "processes"),
    );
    return res.items;
  }

  /** Signals a process by pid or by tag (SIGKILL by default). */
  async kill(process: number | string, signal: Signal = "SIGKILL"): Promise<void> {
    await this.#api.json("DELETE", apiPath("sandboxes", this.#sandboxId, "processes", String(process)), {
      query: { signal },
    });
  }
}
