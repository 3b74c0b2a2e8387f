import { connect, type Socket } from "node:net";
import { WrennError } from "@wrenn/shared";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
}

interface Pending {
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** QEMU's machine protocol over a unix socket: capabilities handshake, commands by id, events. */
export class QmpClient {
  private buffer = "";
  private nextId = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly eventListeners = new Set<(event: QmpEvent) => void>();
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => this.onData(chunk));
    socket.on("close", () => this.failAll(new WrennError("unavailable", "QMP connection closed")));
    socket.on("error", () => {});
  }

  /** Connects (retrying while QEMU creates the socket) and negotiates capabilities. */
  static async connect(path: string, options: { timeoutMs: number }): Promise<QmpClient> {
    const deadline = Date.now() + options.timeoutMs;
    let lastError: unknown;
    while (Date.now() < deadline) {
      try {
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
        const client = new QmpClient(socket);
        await client.handshake(Math.max(100, deadline - Date.now()));
        return client;
      } catch (err) {
        lastError = err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    throw new WrennError("unavailable", `cannot connect to QMP at ${path}: ${(lastError as Error)?.message}`);
  }

  private greeting: ((ok: boolean) => void) | undefined;

  private async handshake(timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no QMP greeting")), timeoutMs);
      this.greeting = (ok) => {
        clearTimeout(timer);
        if (ok) resolve();
        else reject(new Error("bad QMP greeting"));
      };
    });
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
      return;
    }
    if ("QMP" in msg) {
      this.greeting?.(true);
      this.greeting = undefined;
      return;
    }
    if (typeof msg.event === "string") {
      for (const listener of this.eventListeners) listener(msg as unknown as QmpEvent);
      return;
    }
    const id = String(msg.id ?? "");
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    if ("error" in msg) {
      const e = msg.error as { class?: string; desc?: string };
      pending.reject(new WrennError("internal", `QMP error ${e.class}: ${e.desc}`));
    } else {
      pending.resolve(msg.return);
    }
  }

  private failAll(err: Error): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(new WrennError("unavailable", "QMP connection closed"));
    const id = String(this.nextId++);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new WrennError("deadline_exceeded", `QMP ${command} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.socket.write(
        `${JSON.stringify({ execute: command, ...(args ? { arguments: args } : {}), id })}\n`,
      );
    });
  }

  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }

  close(): void {
    this.closed = true;
    this.socket.destroy();
  }
}
