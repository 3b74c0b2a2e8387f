/**
 * Exec streams and terminals over WebSocket:
 *   GET /v1/sandboxes/{id}/exec/ws   a command, its stdout/stderr as they come, stdin, signals
 *   GET /v1/sandboxes/{id}/pty/ws    an interactive terminal (new, or attach by pid)
 * Authentication comes before any data: an API key in the upgrade request (Authorization
 * Bearer or X-API-Key), or a browser's session cookie (the upgrade's Origin must be this
 * server's: browsers send cookies on cross-site WebSockets), or else the first message
 * `{"type":"auth","api_key":"…"}` within AUTH_TIMEOUT_MS. Then the client sends one `start` message. Every message is JSON; bytes
 * travel base64-encoded in `data`.
 *
 * The messages of both directions are the `@wrenn/api` stream schemas (`ExecStartMessageSchema`, …).
 * Errors: {type:"error", code, message}, then the socket closes.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import {
  StreamAuthMessageSchema as AuthMessage,
  ExecInputMessageSchema as ExecInput,
  ExecStartMessageSchema as ExecStart,
  PtyInputMessageSchema as PtyInput,
  PtyStartMessageSchema as PtyStart,
} from "@wrenn/api";
import type { ProcessStreamEvent } from "@wrenn/guest-client";
import { WrennError } from "@wrenn/shared";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import type { z } from "zod";
import { authenticateApiKey, presentedApiKey } from "../auth/authenticate.js";
import type { Principal } from "../auth/principal.js";
import { checkSameOrigin, readCookie, SESSION_COOKIE } from "../auth/session-cookie.js";
import type { SessionStore } from "../auth/sessions.js";
import type { Db } from "../db/database.js";
import { fromGuestError } from "../services/sandbox-guest.js";
import type { SandboxesService } from "../services/sandboxes-service.js";

const AUTH_TIMEOUT_MS = 10_000;
const PATH_RE = /^\/v1\/sandboxes\/([A-Za-z0-9_-]{1,128})\/(exec|pty)\/ws$/;

export interface SandboxStreamsDeps {
  db: Db;
  sessions: SessionStore;
  sandboxes: SandboxesService;
  now: () => Date;
}

/** Serves the two WebSocket endpoints; `handleUpgrade` returns false for any other path. */
export class SandboxStreams {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });

  constructor(private readonly deps: SandboxStreamsDeps) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const path = (req.url ?? "").split("?")[0] ?? "";
    const match = PATH_RE.exec(path);
    if (!match) return false;
    const [, sandboxId, kind] = match as unknown as [string, string, "exec" | "pty"];
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      void this.serve(ws, req, sandboxId, kind).catch((err: unknown) => fail(ws, err));
    });
    return true;
  }

  close(): void {
    for (const client of this.wss.clients) client.terminate();
    this.wss.close();
  }

  private async serve(ws: WebSocket, req: IncomingMessage, sandboxId: string, kind: "exec" | "pty") {
    const inbox = new Inbox(ws);
    const principal = await this.authenticate(req, inbox);
    const start = await inbox.next(AUTH_TIMEOUT_MS);
    const row = await this.deps.sandboxes.running(principal, sandboxId);
    const { guest, hostId } = await this.deps.sandboxes.guestFor(row);
    const abort = new AbortController();
    ws.once("close", () => abort.abort());
    type Output = ProcessStreamEvent & { kind: "stdout" | "stderr" | "pty" };
    const forward = async (events: AsyncIterable<ProcessStreamEvent>, output: (event: Output) => void) => {
      try {
        for await (const event of events) {
          if (event.kind === "started") send(ws, { type: "started", pid: event.pid });
          else if (event.kind === "exited") {
            send(ws, { type: "exit", exit_code: event.exitCode, error: event.error || undefined });
          } else output(event);
        }
      } catch (err) {
        if (!abort.signal.aborted) throw fromGuestError(err, hostId);
      }
    };
    const mapped = (op: () => Promise<void>) =>
      op().catch((err: unknown) => {
        throw fromGuestError(err, hostId);
      });
    if (kind === "exec") {
      const spec = parse(ExecStart, start);
      let pid = 0;
      let timer: NodeJS.Timeout | undefined;
      inbox.onMessage(async (raw) => {
        const msg = parse(ExecInput, raw);
        if (!pid) throw new WrennError("failed_precondition", "the process has not started yet");
        const target = { pid };
        if (msg.type === "kill") await mapped(() => guest.signal(target, "SIGKILL"));
        else await mapped(() => guest.sendInput(target, Buffer.from(msg.data, "base64"), msg.close));
      });
      const events = guest.start(
        { command: spec.command, envs: spec.envs, cwd: spec.cwd, user: spec.user },
        { signal: abort.signal, stdin: true },
      );
      const started = async function* () {
        for await (const event of events) {
          if (event.kind === "started") {
            pid = event.pid;
            if (spec.timeout_ms > 0) {
              timer = setTimeout(() => guest.signal({ pid }, "SIGKILL").catch(() => {}), spec.timeout_ms);
            }
          }
          yield event;
        }
      };
      try {
        await forward(started(), (event) => {
          const type = event.kind === "stderr" ? "stderr" : "stdout";
          send(ws, { type, data: Buffer.from(event.data).toString("base64") });
        });
      } finally {
        clearTimeout(timer);
      }
    } else {
      const spec = parse(PtyStart, start);
      let pid = spec.pid;
      inbox.onMessage(async (raw) => {
        const msg = parse(PtyInput, raw);
        if (!pid) throw new WrennError("failed_precondition", "the terminal has not started yet");
        if (msg.type === "input") await mapped(() => guest.ptyInput(pid, Buffer.from(msg.data, "base64")));
        else if (msg.type === "resize") await mapped(() => guest.ptyResize(pid, msg.cols, msg.rows));
        else await mapped(() => guest.signal({ pid }, "SIGKILL"));
      });
      const events =
        spec.pid === 0
          ? guest.start(
              {
                command: spec.command || "exec /bin/bash -i -l",
                envs: { TERM: "xterm-256color", ...spec.envs },
                cwd: spec.cwd,
                user: spec.user,
              },
              { signal: abort.signal, stdin: true, pty: { cols: spec.cols, rows: spec.rows } },
            )
          : guest.connect({ pid: spec.pid }, { signal: abort.signal });
      const started = async function* () {
        for await (const event of events) {
          if (event.kind === "started") pid = event.pid;
          yield event;
        }
      };
      await forward(started(), (event) => {
        send(ws, { type: "data", data: Buffer.from(event.data).toString("base64") });
      });
    }
    ws.close(1000, "done");
  }

  /** The key from the upgrade request, else its session cookie, else the key in the first message. */
  private async authenticate(req: IncomingMessage, inbox: Inbox): Promise<Principal> {
    const presented = presentedApiKey({
      authorization: req.headers.authorization,
      "x-api-key": req.headers["x-api-key"],
    });
    if (presented) return authenticateApiKey(this.deps.db, presented, this.deps.now());
    const cookie = readCookie(req.headers.cookie, SESSION_COOKIE);
    if (cookie) {
      if (!req.headers.origin) throw new WrennError("permission_denied", "a session needs the Origin header");
      checkSameOrigin(req);
      return (await this.deps.sessions.authenticate(cookie)).principal;
    }
    const first = await inbox.next(AUTH_TIMEOUT_MS).catch(() => {
      throw new WrennError(
        "unauthenticated",
        "no API key: send it in the upgrade request or as the first message",
      );
    });
    const msg = AuthMessage.safeParse(first);
    if (!msg.success) {
      throw new WrennError("unauthenticated", 'the first message must be {"type":"auth","api_key":"…"}');
    }
    return authenticateApiKey(this.deps.db, msg.data.api_key, this.deps.now());
  }
}

/** Messages of one socket: awaited one by one before the stream starts, then handed to a handler. */
class Inbox {
  private readonly queue: unknown[] = [];
  private waiter: ((msg: unknown) => void) | undefined;
  private handler: ((msg: unknown) => Promise<void>) | undefined;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly ws: WebSocket) {
    ws.on("message", (data: RawData) => {
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        fail(ws, new WrennError("invalid_argument", "messages must be JSON"));
        return;
      }
      if (this.handler) {
        const handler = this.handler;
        this.chain = this.chain.then(() => handler(msg)).catch((err: unknown) => fail(ws, err));
      } else if (this.waiter) {
        const waiter = this.waiter;
        this.waiter = undefined;
        waiter(msg);
      } else {
        this.queue.push(msg);
      }
    });
  }

  next(timeoutMs: number): Promise<unknown> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift());
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new WrennError("deadline_exceeded", "no message in time"));
      }, timeoutMs);
      this.waiter = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      this.ws.once("close", () => {
        clearTimeout(timer);
        reject(new WrennError("invalid_argument", "socket closed"));
      });
    });
  }

  onMessage(handler: (msg: unknown) => Promise<void>): void {
    this.handler = handler;
    for (const msg of this.queue.splice(0)) {
      this.chain = this.chain.then(() => handler(msg)).catch((err: unknown) => fail(this.ws, err));
    }
  }
}

function parse<T extends z.ZodType>(schema: T, value: unknown): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new WrennError("invalid_argument", `${where}${issue?.message ?? "invalid message"}`);
  }
  return parsed.data;
}

function send(ws: WebSocket, msg: Record<string, unknown>): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
}

function fail(ws: WebSocket, err: unknown): void {
  const e = WrennError.from(err);
  send(ws, { type: "error", code: e.code, message: e.message });
  // 1008 policy violation for auth, 1011 for everything else.
  ws.close(e.code === "unauthenticated" ? 1008 : 1011, e.code);
}
