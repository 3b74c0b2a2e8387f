import { Agent as HttpAgent } from "node:http";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import {
  type EntryInfo,
  Filesystem,
  Process,
  type ProcessEvent,
  type ProcessInfo,
  Signal,
} from "@wrenn/proto";
import { ERROR_CODE_BY_CONNECT_CODE, errorCodeForStatus, WrennError } from "@wrenn/shared";
import { Agent as FetchAgent, fetch, type Response } from "undici";

export interface EnvdClientOptions {
  /** e.g. http://10.11.0.3:49983 */
  baseUrl: string;
  accessToken: string | undefined;
  /** Per unary request; streams are bounded by their caller's signal. */
  requestTimeoutMs: number;
}

export interface EnvdInit {
  envVars: Record<string, string>;
  accessToken?: string | undefined;
  defaultUser?: string | undefined;
  defaultWorkdir?: string | undefined;
  /** Host time; envd sets the guest clock from it. */
  timestamp: Date;
  /** Host randomness for the guest kernel RNG (sent after every restore, so clones diverge). */
  entropy?: Buffer | undefined;
}

export interface ProcessLaunch {
  /** Shell command line, run as `/bin/bash -l -c <command>`. */
  command: string;
  envs?: Record<string, string> | undefined;
  cwd?: string | undefined;
  user?: string | undefined;
}

export type ProcessTarget = { pid: number } | { tag: string };

/** One event of a process's life as the host agent relays it. */
export type ProcessStreamEvent =
  | { kind: "started"; pid: number }
  | { kind: "stdout"; data: Uint8Array }
  | { kind: "stderr"; data: Uint8Array }
  | { kind: "pty"; data: Uint8Array }
  | { kind: "exited"; exitCode: number; error: string | undefined };

export interface ExecResult {
  pid: number;
  exitCode: number;
  stdout: Uint8Array;
  stderr: Uint8Array;
  error: string | undefined;
}

export function envdErrorToWrenn(err: unknown, what: string): WrennError {
  if (err instanceof WrennError) return err;
  if (err instanceof ConnectError) {
    return new WrennError(ERROR_CODE_BY_CONNECT_CODE[err.code], `${what}: ${err.rawMessage}`, { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new WrennError("unavailable", `${what}: envd unreachable (${message})`, { cause: err });
}

function toEvent(event: ProcessEvent | undefined): ProcessStreamEvent | undefined {
  const e = event?.event;
  switch (e?.case) {
    case "start":
      return { kind: "started", pid: e.value.pid };
    case "data": {
      const out = e.value.output;
      if (out.case === "stdout") return { kind: "stdout", data: out.value };
      if (out.case === "stderr") return { kind: "stderr", data: out.value };
      if (out.case === "pty") return { kind: "pty", data: out.value };
      return undefined;
    }
    case "end":
      return {
        kind: "exited",
        exitCode: e.value.exitCode,
        error: e.value.error ?? (e.value.exited ? undefined : e.value.status || undefined),
      };
    default:
      return undefined;
  }
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}

function userHeader(user: string | undefined): Record<string, string> {
  return user ? { authorization: `Basic ${Buffer.from(`${user}:`).toString("base64")}` } : {};
}

function selector(target: ProcessTarget) {
  return "pid" in target
    ? { selector: { case: "pid" as const, value: target.pid } }
    : { selector: { case: "tag" as const, value: target.tag } };
}

/** Talks to one sandbox's envd: Connect services plus the plain-HTTP endpoints. */
export class EnvdClient {
  private readonly process: Client<typeof Process>;
  private readonly filesystem: Client<typeof Filesystem>;
  /** Aborted by close(): every request in flight fails at once instead of waiting on a dead VM. */
  private readonly lifetime = new AbortController();
  /**
   * Connections of this client only. A slot's address is reused by the next sandbox in it,
   * so a pooled keep-alive connection shared across clients could reach a VM that is gone.
   */
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private readonly fetchAgent = new FetchAgent({ keepAliveTimeout: 4000 });

  constructor(private readonly options: EnvdClientOptions) {
    const lifetime = this.lifetime.signal;
    const transport = createConnectTransport({
      baseUrl: options.baseUrl,
      httpVersion: "1.1",
      nodeOptions: { agent: this.httpAgent },
      interceptors: [
        (next) => async (req) => {
          if (options.accessToken) req.header.set("x-access-token", options.accessToken);
          return next({ ...req, signal: AbortSignal.any([req.signal, lifetime]) });
        },
      ],
    });
    this.process = createClient(Process, transport);
    this.filesystem = createClient(Filesystem, transport);
  }

  /** Fails every request in flight and any later one (the VM is going away: pause, destroy). */
  close(reason: string): void {
    this.lifetime.abort(new WrennError("unavailable", reason));
    this.httpAgent.destroy();
    void this.fetchAgent.destroy().catch(() => {});
  }

  private bound(signal: AbortSignal): AbortSignal {
    return AbortSignal.any([signal, this.lifetime.signal]);
  }

  private authHeaders(user?: string): Record<string, string> {
    return {
      ...(this.options.accessToken ? { "x-access-token": this.options.accessToken } : {}),
      ...userHeader(user),
    };
  }

  private async http(path: string, init: RequestInit & { timeoutMs?: number } = {}): Promise<Response> {
    const signal = this.bound(
      init.signal ?? AbortSignal.timeout(init.timeoutMs ?? this.options.requestTimeoutMs),
    );
    try {
      return await fetch(`${this.options.baseUrl}${path}`, {
        ...(init as Parameters<typeof fetch>[1]),
        signal,
        dispatcher: this.fetchAgent,
      });
    } catch (err) {
      throw envdErrorToWrenn(err, `${init.method ?? "GET"} ${path.split("?")[0]}`);
    }
  }

  private async expectOk(res: Response, what: string): Promise<Response> {
    if (res.ok) return res;
    const text = await res.text().catch(() => "");
    let message = text;
    try {
      message = (JSON.parse(text) as { message?: string }).message ?? text;
    } catch {}
    const code = errorCodeForStatus(res.status);
    throw new WrennError(code, `${what}: ${message || `HTTP ${res.status}`}`);
  }

  /** True when envd answers /health. Never throws. */
  async isHealthy(timeoutMs = 1000): Promise<boolean> {
    try {
      const res = await fetch(`${this.options.baseUrl}/health`, {
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher: this.fetchAgent,
      });
      await res.arrayBuffer();
      return res.status === 204 || res.status === 200;
    } catch {
      return false;
    }
  }

  /** Polls /health until it answers or the deadline passes. */
  async waitHealthy(options: { timeoutMs: number; intervalMs: number; signal?: AbortSignal }): Promise<void> {
    const deadline = Date.now() + options.timeoutMs;
    while (Date.now() < deadline) {
      options.signal?.throwIfAborted();
      if (await this.isHealthy(Math.min(1000, Math.max(50, deadline - Date.now())))) return;
      await new Promise((r) => setTimeout(r, options.intervalMs));
    }
    throw new WrennError("deadline_exceeded", `envd did not become healthy within ${options.timeoutMs} ms`);
  }

  async init(init: EnvdInit): Promise<void> {
    const body = JSON.stringify({
      envVars: init.envVars,
      ...(init.accessToken ? { accessToken: init.accessToken } : {}),
      ...(init.defaultUser ? { defaultUser: init.defaultUser } : {}),
      ...(init.defaultWorkdir ? { defaultWorkdir: init.defaultWorkdir } : {}),
      timestamp: init.timestamp.toISOString(),
      ...(init.entropy ? { entropy: init.entropy.toString("base64") } : {}),
    });
    const res = await this.http("/init", {
      method: "POST",
      headers: { "content-type": "application/json", ...this.authHeaders() },
      body,
    });
    await this.expectOk(res, "envd init");
    await res.arrayBuffer();
  }

  /** Asks envd to quiesce (port forwarding stopped, disks synced) before the VM is frozen. */
  async prepareSnapshot(): Promise<void> {
    const res = await this.http("/snapshot/prepare", { method: "POST", headers: this.authHeaders() });
    await this.expectOk(res, "envd snapshot prepare");
    await res.arrayBuffer();
  }

  async metrics(): Promise<Record<string, unknown>> {
    const res = await this.expectOk(
      await this.http("/metrics", { headers: this.authHeaders() }),
      "envd metrics",
    );
    return (await res.json()) as Record<string, unknown>;
  }

  /** Starts a process and yields its events until it ends or `signal` aborts. */
  async *start(
    launch: ProcessLaunch,
    options: {
      signal?: AbortSignal;
      tag?: string;
      stdin?: boolean;
      pty?: { cols: number; rows: number };
    } = {},
  ): AsyncGenerator<ProcessStreamEvent> {
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
        const event = toEvent(res.event);
        if (event) yield event;
      }
    } catch (err) {
      throw envdErrorToWrenn(err, "start process");
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
        const event = toEvent(res.event);
        if (event) yield event;
      }
    } catch (err) {
      throw envdErrorToWrenn(err, "connect to process");
    }
  }

  /** Runs a command to completion, collecting its output. A timeout kills it. */
  async exec(
    launch: ProcessLaunch,
    options: { timeoutMs?: number; stdin?: Uint8Array } = {},
  ): Promise<ExecResult> {
    const stdout: Uint8Array[] = [];
    const stderr: Uint8Array[] = [];
    let pid = 0;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const wantsStdin = options.stdin !== undefined;
    for await (const event of this.start(launch, { stdin: wantsStdin })) {
      if (event.kind === "started") {
        pid = event.pid;
        if (options.stdin !== undefined) {
          await this.sendInput({ pid }, options.stdin, true);
        }
        if (options.timeoutMs) {
          timer = setTimeout(() => {
            timedOut = true;
            this.signal({ pid }, "SIGKILL").catch(() => {});
          }, options.timeoutMs);
        }
      } else if (event.kind === "stdout" || event.kind === "pty") stdout.push(event.data);
      else if (event.kind === "stderr") stderr.push(event.data);
      else if (event.kind === "exited") {
        clearTimeout(timer);
        return {
          pid,
          exitCode: event.exitCode,
          stdout: concat(stdout),
          stderr: concat(stderr),
          error: timedOut ? `timed out after ${options.timeoutMs} ms` : event.error,
        };
      }
    }
    clearTimeout(timer);
    throw new WrennError("unavailable", "process stream ended without an exit event");
  }

  async list(): Promise<ProcessInfo[]> {
    try {
      return (await this.process.list({}, { timeoutMs: this.options.requestTimeoutMs })).processes;
    } catch (err) {
      throw envdErrorToWrenn(err, "list processes");
    }
  }

  async signal(target: ProcessTarget, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    try {
      await this.process.sendSignal(
        { process: selector(target), signal: signal === "SIGTERM" ? Signal.SIGTERM : Signal.SIGKILL },
        { timeoutMs: this.options.requestTimeoutMs },
      );
    } catch (err) {
      throw envdErrorToWrenn(err, "signal process");
    }
  }

  async sendInput(target: ProcessTarget, data: Uint8Array, closeStdin = false): Promise<void> {
    try {
      if (data.byteLength > 0) {
        await this.process.sendInput(
          { process: selector(target), input: { input: { case: "stdin", value: data } } },
          { timeoutMs: this.options.requestTimeoutMs },
        );
      }
      if (closeStdin) {
        await this.process.closeStdin(
          { process: selector(target) },
          { timeoutMs: this.options.requestTimeoutMs },
        );
      }
    } catch (err) {
      throw envdErrorToWrenn(err, "send input");
    }
  }

  async ptyInput(pid: number, data: Uint8Array): Promise<void> {
    try {
      await this.process.sendInput(
        { process: selector({ pid }), input: { input: { case: "pty", value: data } } },
        { timeoutMs: this.options.requestTimeoutMs },
      );
    } catch (err) {
      throw envdErrorToWrenn(err, "pty input");
    }
  }

  async ptyResize(pid: number, cols: number, rows: number): Promise<void> {
    try {
      await this.process.update(
        { process: selector({ pid }), pty: { size: { cols, rows } } },
        { timeoutMs: this.options.requestTimeoutMs },
      );
    } catch (err) {
      throw envdErrorToWrenn(err, "pty resize");
    }
  }

  /** Streams a file out of the sandbox. */
  async readFile(path: string, user?: string, signal?: AbortSignal): Promise<ReadableStream<Uint8Array>> {
    const query = new URLSearchParams({ path, ...(user ? { username: user } : {}) });
    const res = await this.http(`/files?${query}`, {
      headers: this.authHeaders(user),
      signal: this.bound(signal ?? AbortSignal.timeout(24 * 3600_000)),
    });
    await this.expectOk(res, `read ${path}`);
    if (!res.body) throw new WrennError("internal", `read ${path}: empty body`);
    return res.body;
  }

  /** Streams a file into the sandbox, creating parent directories. */
  async writeFile(
    path: string,
    body: ReadableStream<Uint8Array> | Uint8Array,
    user?: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const query = new URLSearchParams({ path, ...(user ? { username: user } : {}) });
    const res = await this.http(`/files?${query}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream", ...this.authHeaders(user) },
      body,
      // Node's fetch needs this to send a stream body.
      ...({ duplex: "half" } as object),
      signal: this.bound(signal ?? AbortSignal.timeout(24 * 3600_000)),
    });
    await this.expectOk(res, `write ${path}`);
    await res.arrayBuffer();
  }

  async listDir(path: string, depth: number, user?: string): Promise<EntryInfo[]> {
    try {
      const res = await this.filesystem.listDir(
        { path, depth },
        { headers: userHeader(user), timeoutMs: this.options.requestTimeoutMs },
      );
      return res.entries;
    } catch (err) {
      throw envdErrorToWrenn(err, `list ${path}`);
    }
  }

  /** Returns false when the directory already existed. */
  async makeDir(path: string, user?: string): Promise<boolean> {
    try {
      await this.filesystem.makeDir(
        { path },
        { headers: userHeader(user), timeoutMs: this.options.requestTimeoutMs },
      );
      return true;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.AlreadyExists) return false;
      throw envdErrorToWrenn(err, `mkdir ${path}`);
    }
  }

  async remove(path: string, user?: string): Promise<void> {
    try {
      await this.filesystem.remove(
        { path },
        { headers: userHeader(user), timeoutMs: this.options.requestTimeoutMs },
      );
    } catch (err) {
      throw envdErrorToWrenn(err, `remove ${path}`);
    }
  }
}
