import { connect, type Socket } from "node:net";
import { WrennError } from "@wrenn/shared";

/** An asynchronous QMP event (STOP, RESUME, SHUTDOWN, MIGRATION, ...). */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

/** QEMU refused a command; `qmpClass` is QEMU's error class (GenericError, CommandNotFound, ...). */
export class QmpCommandError extends WrennError {
  constructor(
    readonly command: string,
    readonly qmpClass: string,
    desc: string,
  ) {
    super("internal", `QMP ${command} failed: ${qmpClass}: ${desc}`);
  }
}

export interface QmpConnectOptions {
  /** Overall budget for connecting (retried while QEMU has not created the socket yet) and the handshake. */
  timeoutMs: number;
  /** Default per-command timeout. */
  commandTimeoutMs?: number;
  /** Stops the connect retries early (e.g. the VMM already exited). */
  signal?: AbortSignal;
}

interface Pending {
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

const RETRY_DELAY_MS = 10;

/**
 * A small client for QEMU's machine protocol over a unix socket: greeting and
 * qmp_capabilities, commands matched to replies by id, events to listeners, per-command
 * timeouts. Errors are WrennErrors: `unavailable` (no connection / closed),
 * `deadline_exceeded` (timeout), QmpCommandError (QEMU said no).
 */
export class QmpClient {
  private buffer = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private onGreeting: ((version: unknown) => void) | undefined;
  private isClosed = false;
  /** Resolves when the connection is gone (closed by us, by QEMU, or QEMU exited). */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  /** QEMU's version from the greeting. */
  version: { major: number; minor: number; micro: number } | undefined;

  private constructor(
    private readonly socket: Socket,
    private readonly commandTimeoutMs: number,
  ) {
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("close", () => this.onClose());
    // "close" follows every error; the pending commands are failed there.
    socket.on("error", () => {});
  }

  /** Connects (retrying while the socket does not exist yet) and negotiates capabilities. */
  static async connect(path: string, options: QmpConnectOptions): Promise<QmpClient> {
    const deadline = Date.now() + options.timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline && !options.signal?.aborted) {
      let socket: Socket;
      try {
        socket = await connectOnce(path, deadline - Date.now());
      } catch (err) {
        lastError = err;
        const code = (err as NodeJS.ErrnoException).code;
        // ENOENT/ECONNREFUSED: QEMU has not bound the socket yet (or is gone; the caller's signal says which).
        if (code !== "ENOENT" && code !== "ECONNREFUSED") break;
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
        continue;
      }
      const client = new QmpClient(socket, options.commandTimeoutMs ?? 10_000);
      try {
        await client.handshake(Math.max(100, deadline - Date.now()));
        return client;
      } catch (err) {
        client.close();
        lastError = err;
        break;
      }
    }
    const why = options.signal?.aborted
      ? "connect aborted"
      : lastError instanceof Error
        ? lastError.message
        : `no connection within ${options.timeoutMs} ms`;
    throw new WrennError("unavailable", `cannot connect to QMP at ${path}: ${why}`, { cause: lastError });
  }

  private async handshake(timeoutMs: number): Promise<void> {
    const greeting = new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new WrennError("deadline_exceeded", `no QMP greeting within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.onGreeting = (version) => {
        clearTimeout(timer);
        resolve(version);
      };
      this.closed.then(() => {
        clearTimeout(timer);
        reject(new WrennError("unavailable", "QMP connection closed before the greeting"));
      });
    });
    const version = (await greeting) as { qemu?: { major: number; minor: number; micro: number } };
    this.version = version?.qemu;
    await this.execute("qmp_capabilities", undefined, timeoutMs);
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    for (let nl = this.buffer.indexOf("\n"); nl >= 0; nl = this.buffer.indexOf("\n")) {
      const line = this.buffer.slice(0, nl).trim();
      this.buffer = this.buffer.slice(nl + 1);
      if (line) this.onMessage(line);
    }
  }

  private onMessage(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return; // QEMU only sends JSON; ignore anything else rather than fail the connection.
    }
    if ("QMP" in msg) {
      const greeting = msg.QMP as { version?: unknown } | undefined;
      this.onGreeting?.(greeting?.version);
      this.onGreeting = undefined;
      return;
    }
    if (typeof msg.event === "string") {
      for (const listener of this.listeners) listener(msg as unknown as QmpEvent);
      return;
    }
    const id = typeof msg.id === "string" ? msg.id : undefined;
    const pending = id === undefined ? undefined : this.pending.get(id);
    if (!pending || id === undefined) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ("error" in msg) {
      const e = (msg.error ?? {}) as { class?: string; desc?: string };
      pending.reject(new QmpCommandError(pending.command, e.class ?? "Unknown", e.desc ?? ""));
    } else {
      pending.resolve(msg.return);
    }
  }

  private onClose(): void {
    this.isClosed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new WrennError("unavailable", `QMP connection closed during ${p.command}`));
      this.pending.delete(id);
    }
    this.resolveClosed();
  }

  get isOpen(): boolean {
    return !this.isClosed;
  }

  /** Runs a command and resolves with its `return` value. */
  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T> {
    if (this.isClosed) {
      return Promise.reject(new WrennError("unavailable", `QMP connection closed; cannot run ${command}`));
    }
    const id = `w${this.nextId++}`;
    const budget = timeoutMs ?? this.commandTimeoutMs;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WrennError("deadline_exceeded", `QMP ${command} got no reply within ${budget} ms`));
      }, budget);
      this.pending.set(id, { command, resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`,
      );
    });
  }

  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves with the next event of that name (subscribe before triggering it). */
  waitForEvent(name: string, timeoutMs: number): Promise<QmpEvent> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new WrennError("deadline_exceeded", `no QMP ${name} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onEvent((event) => {
        if (event.event !== name) return;
        clearTimeout(timer);
        off();
        resolve(event);
      });
      this.closed.then(() => {
        clearTimeout(timer);
        off();
        reject(new WrennError("unavailable", `QMP connection closed while waiting for ${name}`));
      });
    });
  }

  /** Closes the connection (pending commands fail with `unavailable`); resolves once closed. */
  close(): Promise<void> {
    if (!this.isClosed) this.socket.destroy();
    return this.closed;
  }
}

function connectOnce(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const socket = connect(path);
    const timer = setTimeout(
      () => {
        socket.destroy();
        reject(new WrennError("deadline_exceeded", `connect to ${path} timed out`));
      },
      Math.max(1, timeoutMs),
    );
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}
