import type { Agent as HttpAgent } from "node:http";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { type EntryInfo, Filesystem, Process, type ProcessInfo, Signal } from "@wrenn/proto";
import { WrennError } from "@wrenn/shared";
import { type Dispatcher, fetch } from "undici";
import { guestError, httpError } from "./guest-errors.js";
import { validateGuestPath } from "./guest-path.js";
import { concatBytes, type ProcessStreamEvent, toStreamEvent } from "./process-events.js";

export interface GuestClientOptions {
  /** envd itself (`http://<guest>:49983`) or an agent's traffic hop. */
  baseUrl: string;
  /** Sent on every request: the envd access token, and the hop's headers when going through one. */
  headers: Record<string, string>;
  /** Per unary call; streams last until they end or their caller's signal aborts. */
  requestTimeoutMs: number;
  /** Connections for the Connect calls (HTTP/1.1); shared by the clients of one host. */
  httpAgent?: HttpAgent | undefined;
  /** Connections for the `/files` transfers; shared likewise. */
  dispatcher?: Dispatcher | undefined;
}

export interface ProcessLaunch {
  /** Shell command line, run as `/bin/bash -l -c <command>`. */
  command: string;
  envs?: Record<string, string> | undefined;
  cwd?: string | undefined;
  user?: string | undefined;
}

export type ProcessTarget = { pid: number } | { tag: string };

export interface StartOptions {
  signal?: AbortSignal | undefined;
  tag?: string | undefined;
  /** Keep stdin open for sendInput (closed by closeStdin). */
  stdin?: boolean | undefined;
  pty?: { cols: number; rows: number } | undefined;
}

export interface ExecResult {
  pid: number;
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  /** Set when the process did not exit normally (a signal, the timeout). */
  error: string | undefined;
}

/** A directory entry as envd reports it (`type` is envd's FileType). */
export type DirEntry = EntryInfo;

function userHeader(user: string | undefined): Record<string, string> {
  return user ? { authorization: `Basic ${Buffer.from(`${user}:`).toString("base64")}` } : {};
}

function selector(target: ProcessTarget) {
  return "pid" in target
    ? { selector: { case: "pid" as const, value: target.pid } }
    : { selector: { case: "tag" as const, value: target.tag } };
}

const DAY_MS = 24 * 3600_000;

/**
 * A sandbox's guest through envd's own protocol: the Process and Filesystem Connect
 * services (HTTP/1.1: unary and server streams) and the `/files` HTTP endpoint, streamed
 * both ways. Every failure is a WrennError (see guestError).
 */
export class GuestClient {
  private readonly process: Client<typeof Process>;
  private readonly filesystem: Client<typeof Filesystem>;

  constructor(private readonly options: GuestClientOptions) {
    const transport = createConnectTransport({
      baseUrl: options.baseUrl,
      httpVersion: "1.1",
      ...(options.httpAgent ? { nodeOptions: { agent: options.httpAgent } } : {}),
      interceptors: [
        (next) => async (req) => {
          for (const [name, value] of Object.entries(options.headers)) req.header.set(name, value);
          return next(req);
        },
      ],
    });
    this.process = createClient(Process, transport);
    this.filesystem = createClient(Filesystem, transport);
  }

  private get unary() {
    return { timeoutMs: this.options.requestTimeoutMs };
  }

  /** Starts `/bin/bash -l -c <command>` and yields its events until it ends or the signal aborts. */
  async *start(launch: ProcessLaunch, options: StartOptions = {}): AsyncGenerator<ProcessStreamEvent> {
    try {
      const stream = this.process.start(
        {
          process: {
            cmd: "/bin/bash",
            args: ["-l", "-c", launch.command],
            envs: launch.envs ?? {},
            ...(launch.cwd ? { cwd: launch.cwd } : {}),
          },
          ...(options.tag ? { tag: options.tag } : {}),
          ...(options.pty ? { pty: { size: { cols: options.pty.cols, rows: options.pty.rows } } } : {}),
          stdin: options.stdin ?? false,
        },
        { headers: userHeader(launch.user), ...(options.signal ? { signal: options.signal } : {}) },
      );
      for await (const res of stream) {
        const event = toStreamEvent(res.event);
        if (event) yield event;
      }
    } catch (err) {
      throw guestError(err, "start process");
    }
  }

  /** Re-attaches to a running process and yields its further events. */
  async *connect(
    target: ProcessTarget,
    options: { signal?: AbortSignal } = {},
  ): AsyncGenerator<ProcessStreamEvent> {
    try {
      const stream = this.process.connect(
        { process: selector(target) },
        options.signal ? { signal: options.signal } : {},
      );
      for await (const res of stream) {
        const event = toStreamEvent(res.event);
        if (event) yield event;
      }
    } catch (err) {
      throw guestError(err, "connect to process");
    }
  }

  /** Starts a process and returns its pid once envd reports it; it keeps running unobserved. */
  async startBackground(launch: ProcessLaunch, tag?: string): Promise<number> {
    const abort = new AbortController();
    const events = this.start(launch, { signal: abort.signal, stdin: true, tag });
    try {
      const first = await events.next();
      if (first.done || first.value.kind !== "started") {
        throw new WrennError("internal", "process did not report its start");
      }
      return first.value.pid;
    } finally {
      abort.abort();
      events.return(undefined).catch(() => {});
    }
  }

  /** Runs a command to completion, collecting its output; `timeoutMs` kills it (SIGKILL). */
  async exec(
    launch: ProcessLaunch,
    options: { timeoutMs?: number; stdin?: Uint8Array } = {},
  ): Promise<ExecResult> {
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    let pid = 0;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    try {
      for await (const event of this.start(launch, { stdin: options.stdin !== undefined })) {
        if (event.kind === "started") {
          pid = event.pid;
          if (options.stdin !== undefined) await this.sendInput({ pid }, options.stdin, true);
          if (options.timeoutMs) {
            timer = setTimeout(() => {
              timedOut = true;
              this.signal({ pid }, "SIGKILL").catch(() => {});
            }, options.timeoutMs);
          }
        } else if (event.kind === "stdout" || event.kind === "pty") stdout.push(event.data);
        else if (event.kind === "stderr") stderr.push(event.data);
        else {
          return {
            pid,
            exitCode: event.exitCode,
            stdout: concatBytes(stdout),
            stderr: concatBytes(stderr),
            error: timedOut ? `timed out after ${options.timeoutMs} ms` : event.error,
          };
        }
      }
    } finally {
      clearTimeout(timer);
    }
    throw new WrennError("unavailable", "process stream ended without an exit event");
  }

  async list(): Promise<ProcessInfo[]> {
    try {
      return (await this.process.list({}, this.unary)).processes;
    } catch (err) {
      throw guestError(err, "list processes");
    }
  }

  async signal(target: ProcessTarget, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    try {
      await this.process.sendSignal(
        { process: selector(target), signal: signal === "SIGTERM" ? Signal.SIGTERM : Signal.SIGKILL },
        this.unary,
      );
    } catch (err) {
      throw guestError(err, "signal process");
    }
  }

  /** Writes to a process's stdin, then closes it when asked. */
  async sendInput(target: ProcessTarget, data: Uint8Array, closeStdin = false): Promise<void> {
    try {
      if (data.byteLength > 0) {
        await this.process.sendInput(
          { process: selector(target), input: { input: { case: "stdin", value: data } } },
          this.unary,
        );
      }
      if (closeStdin) await this.process.closeStdin({ process: selector(target) }, this.unary);
    } catch (err) {
      throw guestError(err, "send input");
    }
  }

  async ptyInput(pid: number, data: Uint8Array): Promise<void> {
    try {
      await this.process.sendInput(
        { process: selector({ pid }), input: { input: { case: "pty", value: data } } },
        this.unary,
      );
    } catch (err) {
      throw guestError(err, "pty input");
    }
  }

  async ptyResize(pid: number, cols: number, rows: number): Promise<void> {
    if (!cols || !rows) throw new WrennError("invalid_argument", "cols and rows must be positive");
    try {
      await this.process.update({ process: selector({ pid }), pty: { size: { cols, rows } } }, this.unary);
    } catch (err) {
      throw guestError(err, "pty resize");
    }
  }

  private async files(
    method: "GET" | "POST",
    path: string,
    user: string | undefined,
    init: { body?: ReadableStream<Uint8Array> | Uint8Array; signal?: AbortSignal | undefined },
  ) {
    const normal = validateGuestPath(path);
    const query = new URLSearchParams({ path: normal, ...(user ? { username: user } : {}) });
    const what = `${method === "GET" ? "read" : "write"} ${normal}`;
    let res: Awaited<ReturnType<typeof fetch>>;
    try {
      res = await fetch(`${this.options.baseUrl}/files?${query}`, {
        method,
        headers: {
          ...this.options.headers,
          ...userHeader(user),
          ...(init.body ? { "content-type": "application/octet-stream" } : {}),
        },
        ...(init.body ? { body: init.body, duplex: "half" as const } : {}),
        signal: init.signal ?? AbortSignal.timeout(DAY_MS),
        ...(this.options.dispatcher ? { dispatcher: this.options.dispatcher } : {}),
      });
    } catch (err) {
      throw guestError(err, what);
    }
    if (!res.ok) throw await httpError(res, what);
    return { res, path: normal };
  }

  /** Streams a file out of the guest; the answer's status is known before this returns. */
  async readFile(path: string, user?: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const { res, path: normal } = await this.files("GET", path, user, { signal });
    if (!res.body) throw new WrennError("internal", `read ${normal}: empty body`);
    return res.body as ReadableStream<Uint8Array>;
  }

  /** Streams a file into the guest, creating parent directories; returns its normalised path. */
  async writeFile(
    path: string,
    body: ReadableStream<Uint8Array> | Uint8Array,
    user?: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const { res, path: normal } = await this.files("POST", path, user, { body, signal });
    await res.arrayBuffer();
    return normal;
  }

  async listDir(path: string, depth: number, user?: string): Promise<DirEntry[]> {
    const normal = validateGuestPath(path);
    try {
      return (
        await this.filesystem.listDir({ path: normal, depth }, { ...this.unary, headers: userHeader(user) })
      ).entries;
    } catch (err) {
      throw guestError(err, `list ${normal}`);
    }
  }

  /** Makes a directory and its parents; false when it already existed. */
  async makeDir(path: string, user?: string): Promise<boolean> {
    const normal = validateGuestPath(path);
    try {
      await this.filesystem.makeDir({ path: normal }, { ...this.unary, headers: userHeader(user) });
      return true;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.AlreadyExists) return false;
      throw guestError(err, `mkdir ${normal}`);
    }
  }

  async remove(path: string, user?: string): Promise<void> {
    const normal = validateGuestPath(path);
    try {
      await this.filesystem.remove({ path: normal }, { ...this.unary, headers: userHeader(user) });
    } catch (err) {
      throw guestError(err, `remove ${normal}`);
    }
  }
}
