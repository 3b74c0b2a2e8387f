import {
  type ExecBody,
  type ExecInputMessage,
  type ExecResultView,
  ExecServerMessageSchema,
  type ExecStartMessage,
  type ProcessView,
  type SignalName,
  type StartProcessBody,
} from "@wrenn/api";
import { type ApiClient, apiPath } from "./api-client.js";
import { base64ToBytes, bytesToBase64, concatBytes, toBytes, utf8Text } from "./bytes.js";
import { WrennConnectionError } from "./errors.js";
import type { StreamSocket } from "./stream-socket.js";

export interface CommandOptions {
  /** Extra environment variables for this command. */
  envs?: Record<string, string>;
  /** Working directory (default: the user's home). */
  cwd?: string;
  /** User to run as (default: the sandbox's default user, `user`). */
  user?: string;
  /** Kill the command after this many milliseconds (default 60 000 in the foreground, none in the background; 0 means none). */
  timeoutMs?: number;
  /** Text or bytes written to the command's stdin, which is then closed. */
  stdin?: string | Uint8Array;
  /** Called with each chunk of output as it comes (the command then runs over a WebSocket stream). */
  onStdout?: (data: string) => void;
  onStderr?: (data: string) => void;
}

export interface BackgroundCommandOptions extends Omit<CommandOptions, "stdin"> {
  background: true;
}

export interface StartOptions {
  envs?: Record<string, string>;
  cwd?: string;
  user?: string;
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
  /** How the process ended, as envd reports it ("exit status 3", "timed out after 1000 ms", …), or null. */
  error: string | null;
  pid: number;
}

/** A process started through the API: its pid, tag, command, arguments and working directory. */
export type ProcessInfo = ProcessView;

export type Signal = SignalName;

export const DEFAULT_COMMAND_TIMEOUT_MS = 60_000;
/** Extra time the HTTP request gets beyond the command's own timeout. */
const REQUEST_GRACE_MS = 15_000;

function decode(data: string, encoding: "utf8" | "base64"): Uint8Array {
  return encoding === "base64" ? base64ToBytes(data) : toBytes(data);
}

/**
 * A command running over the exec stream (`background: true`, or any run with output
 * callbacks): output arrives as it is written, stdin can be fed, and `wait()` gives the result.
 */
export class CommandHandle {
  readonly pid: number;
  readonly #socket: StreamSocket;
  readonly #result: Promise<CommandResult>;

  /** Use `commands.run(cmd, { background: true })`. */
  constructor(pid: number, socket: StreamSocket, result: Promise<CommandResult>) {
    this.pid = pid;
    this.#socket = socket;
    this.#result = result;
  }

  /** Opens the exec stream and resolves once the process has started. */
  static async start(
    api: ApiClient,
    sandboxId: string,
    cmd: string,
    options: CommandOptions & { timeoutMs: number },
  ): Promise<CommandHandle> {
    const path = apiPath("sandboxes", sandboxId, "exec", "ws");
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    let pid = 0;
    let exit: { code: number; error: string | null } | undefined;
    let onStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      onStarted = resolve;
    });
    const socket = await api.openStream(
      path,
      {
        type: "start",
        command: cmd,
        envs: options.envs,
        cwd: options.cwd,
        user: options.user,
        timeout_ms: options.timeoutMs,
      } satisfies ExecStartMessage,
      (raw) => {
        const parsed = ExecServerMessageSchema.safeParse(raw);
        if (!parsed.success) return;
        const msg = parsed.data;
        if (msg.type === "started") {
          pid = msg.pid;
          onStarted();
        } else if (msg.type === "stdout" || msg.type === "stderr") {
          const chunk = base64ToBytes(msg.data);
          (msg.type === "stdout" ? stdout : stderr).push(chunk);
          (msg.type === "stdout" ? options.onStdout : options.onStderr)?.(utf8Text(chunk));
        } else if (msg.type === "exit") {
          exit = { code: msg.exit_code, error: msg.error ?? null };
        }
      },
    );
    const result = socket.done.then((): CommandResult => {
      if (!exit) {
        throw new WrennConnectionError({
          url: path,
          timedOut: false,
          message: "the exec stream closed before the command exited",
        });
      }
      const stdoutBytes = concatBytes(stdout);
      const stderrBytes = concatBytes(stderr);
      return {
        exitCode: exit.code,
        stdout: utf8Text(stdoutBytes),
        stderr: utf8Text(stderrBytes),
        stdoutBytes,
        stderrBytes,
        error: exit.error,
        pid,
      };
    });
    result.catch(() => undefined);
    // Started, or the stream failed first (sandbox not running, bad input): that error surfaces here.
    await Promise.race([started, result]);
    return new CommandHandle(pid, socket, result);
  }

  /** Resolves with the exit code and all output once the command ends (a non-zero exit does not throw). */
  wait(): Promise<CommandResult> {
    return this.#result;
  }

  /** Writes to the command's stdin; `close` ends it. */
  sendStdin(data: string | Uint8Array, options: { close?: boolean } = {}): void {
    this.#socket.send({
      type: "stdin",
      data: bytesToBase64(toBytes(data)),
      close: options.close ?? false,
    } satisfies ExecInputMessage);
  }

  closeStdin(): void {
    this.#socket.send({ type: "stdin", data: "", close: true } satisfies ExecInputMessage);
  }

  /** Kills the command (SIGKILL); `wait()` then resolves with how it ended. */
  kill(): void {
    this.#socket.send({ type: "kill" } satisfies ExecInputMessage);
  }

  /** Stops receiving output (closes the stream); use `kill()` to stop the command. */
  disconnect(): void {
    this.#socket.close();
  }
}

/** Commands in one sandbox, each run as `/bin/bash -l -c <cmd>`. */
export class Commands {
  readonly #api: ApiClient;
  readonly #sandboxId: string;

  constructor(api: ApiClient, sandboxId: string) {
    this.#api = api;
    this.#sandboxId = sandboxId;
  }

  /**
   * Runs a command to completion and returns its exit code and output (a non-zero exit does
   * not throw). With `onStdout`/`onStderr` the output streams in as it is written.
   */
  run(cmd: string, options?: CommandOptions & { background?: false }): Promise<CommandResult>;
  /** Starts a command and returns a handle to stream, feed, kill or wait for it. */
  run(cmd: string, options: BackgroundCommandOptions): Promise<CommandHandle>;
  async run(
    cmd: string,
    options: (CommandOptions & { background?: false }) | BackgroundCommandOptions = {},
  ): Promise<CommandResult | CommandHandle> {
    if (options.background) {
      return CommandHandle.start(this.#api, this.#sandboxId, cmd, {
        ...options,
        timeoutMs: options.timeoutMs ?? 0,
      });
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
    // The one-shot route takes stdin as a JSON string: bytes go over the stream instead.
    if (options.onStdout || options.onStderr || options.stdin instanceof Uint8Array) {
      const handle = await CommandHandle.start(this.#api, this.#sandboxId, cmd, { ...options, timeoutMs });
      if (options.stdin !== undefined) handle.sendStdin(options.stdin, { close: true });
      return handle.wait();
    }
    const res = await this.#api.json<ExecResultView>("POST", apiPath("sandboxes", this.#sandboxId, "exec"), {
      json: {
        command: cmd,
        envs: options.envs,
        cwd: options.cwd,
        user: options.user,
        timeout_ms: timeoutMs > 0 ? timeoutMs : undefined,
        stdin: options.stdin,
      } satisfies ExecBody,
      timeoutMs: timeoutMs > 0 ? Math.max(timeoutMs + REQUEST_GRACE_MS, this.#api.timeoutMs) : 0,
    });
    const stdoutBytes = decode(res.stdout, res.stdout_encoding);
    const stderrBytes = decode(res.stderr, res.stderr_encoding);
    return {
      exitCode: res.exit_code,
      stdout: utf8Text(stdoutBytes),
      stderr: utf8Text(stderrBytes),
      stdoutBytes,
      stderrBytes,
      error: res.error,
      pid: res.pid,
    };
  }

  /**
   * Starts a detached process that outlives this client (no output is kept); find it with
   * `list()` and stop it with `kill(pid or tag)`.
   */
  async start(cmd: string, options: StartOptions = {}): Promise<{ pid: number; tag: string | undefined }> {
    const res = await this.#api.json<{ pid: number }>(
      "POST",
      apiPath("sandboxes", this.#sandboxId, "processes"),
      {
        json: {
          command: cmd,
          envs: options.envs,
          cwd: options.cwd,
          user: options.user,
          tag: options.tag,
        } satisfies StartProcessBody,
      },
    );
    return { pid: res.pid, tag: options.tag };
  }

  /** Processes started through the API that are still running. */
  async list(): Promise<ProcessInfo[]> {
    const res = await this.#api.json<{ items: ProcessView[] }>(
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
