/**
 * Sandbox traffic on the API's listener: a request whose Host is `<port>-<sandboxId>.<domain>`
 * or that carries `E2b-Sandbox-Id` + `E2b-Sandbox-Port` goes to that port of that sandbox
 * (49983 is envd), streamed both ways, WebSocket upgrades included. It never reaches the API's
 * routes, auth or body parsing: envd checks its own access token. A sandbox that is not
 * running answers 502 `{"sandboxId","message":"The sandbox was not found","code":502}`.
 *
 * The control plane reaches a sandbox at the address its agent reported (host_ip): true when
 * control plane and agents share a machine (`make up`, the tests). Hosts elsewhere would need
 * the agent to relay the traffic; that is not built.
 */
import { type IncomingHttpHeaders, type IncomingMessage, request, type ServerResponse } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import type { Logger } from "@wrenn/shared";
import type { Db } from "../db/database.js";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;
/** How long a sandbox's address is remembered (a resume may move it to another slot). */
const CACHE_MS = 1000;
/** A running sandbox accepts a connection at once; anything slower means it is gone. */
const CONNECT_TIMEOUT_MS = 3000;

export interface SandboxTarget {
  sandboxId: string;
  port: number;
}

export interface SandboxProxyDeps {
  db: Db;
  /** `<port>-<id>.<domain>` hosts are routed when set. */
  domain: string | null;
  logger: Logger;
}

export class SandboxProxy {
  private readonly cache = new Map<string, { at: number; hostIp: string | null }>();

  constructor(private readonly deps: SandboxProxyDeps) {}

  /** The sandbox and port a request is for, or null when it is for the API. */
  target(req: IncomingMessage): SandboxTarget | null {
    const id = header(req.headers, "e2b-sandbox-id");
    const port = header(req.headers, "e2b-sandbox-port");
    if (id && port) return checked(id, port);
    const domain = this.deps.domain;
    const host = (req.headers.host ?? "").split(":")[0]?.toLowerCase() ?? "";
    if (domain && host.endsWith(`.${domain}`)) {
      const label = host.slice(0, -(domain.length + 1));
      const m = /^(\d{1,5})-([a-z0-9_-]+)$/.exec(label);
      if (m?.[1] && m[2]) return checked(m[2], m[1]);
    }
    return null;
  }

  async handleRequest(req: IncomingMessage, res: ServerResponse, target: SandboxTarget): Promise<void> {
    const hostIp = await this.addressOf(target.sandboxId);
    if (!hostIp) {
      notFound(res, target.sandboxId);
      req.resume();
      return;
    }
    const upstream = request({
      host: hostIp,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: forwardHeaders(req.headers),
      // No pooled connections: one kept open to a VM that was since paused or destroyed
      // would take the next request and never answer.
      agent: false,
    });
    // A sandbox that just went away leaves no route: fail fast instead of waiting out SYN retries.
    upstream.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), CONNECT_TIMEOUT_MS);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
    upstream.on("response", (up) => {
      res.writeHead(up.statusCode ?? 502, forwardHeaders(up.headers));
      up.pipe(res);
    });
    upstream.on("error", (err) => {
      this.deps.logger.debug("sandbox proxy upstream failed", { sandbox: target.sandboxId, err });
      this.cache.delete(target.sandboxId);
      if (!res.headersSent) notFound(res, target.sandboxId);
      else res.destroy();
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  /** WebSocket (or any upgrade) to a sandbox port: the raw bytes both ways after the request head. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, target: SandboxTarget): void {
    void this.addressOf(target.sandboxId).then((hostIp) => {
      if (!hostIp) {
        const body = JSON.stringify(notFoundBody(target.sandboxId));
        socket.end(
          `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
        );
        return;
      }
      const upstream = connect({ port: target.port, host: hostIp, timeout: CONNECT_TIMEOUT_MS }, () => {
        upstream.setTimeout(0);
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2)
          lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(`${lines.join("\r\n")}\r\n\r\n`);
        if (head.length > 0) upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      const close = () => {
        upstream.destroy();
        socket.destroy();
      };
      upstream.on("error", close);
      upstream.on("timeout", close);
      socket.on("error", close);
      socket.on("close", close);
    });
  }

  private async addressOf(sandboxId: string): Promise<string | null> {
    const hit = this.cache.get(sandboxId);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.hostIp;
    const row = await this.deps.db
      .selectFrom("sandboxes")
      .select(["state", "host_ip"])
      .where("id", "=", sandboxId)
      .executeTakeFirst();
    const hostIp = row?.state === "running" && row.host_ip ? row.host_ip : null;
    this.cache.set(sandboxId, { at: Date.now(), hostIp });
    return hostIp;
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function checked(id: string, port: string): SandboxTarget | null {
  const n = Number(port);
  if (!ID_RE.test(id) || !Number.isInteger(n) || n < 1 || n > 65535) return null;
  return { sandboxId: id, port: n };
}

function forwardHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
  return out;
}

function notFoundBody(sandboxId: string) {
  return { sandboxId, message: "The sandbox was not found", code: 502 };
}

function notFound(res: ServerResponse, sandboxId: string): void {
  res.writeHead(502, { "content-type": "application/json" }).end(JSON.stringify(notFoundBody(sandboxId)));
}
