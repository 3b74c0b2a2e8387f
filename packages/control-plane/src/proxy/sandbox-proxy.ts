import {
  type ClientRequest,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "@wrenn/shared";
import { type BadProxyTarget, type ProxyTarget, parseProxyTarget } from "./proxy-target.js";
import type { SandboxAddress } from "./sandbox-address.js";

export interface SandboxProxyOptions {
  logger: Logger;
  /** See `ControlPlaneConfig.sandboxDomain`. */
  domain: string | undefined;
  resolve(sandboxId: string): Promise<SandboxAddress>;
  /**
   * How long to wait for a sandbox port to accept a connection: a running sandbox accepts
   * at once, so a slow connect means it just went away (no route answers a SYN).
   */
  connectTimeoutMs?: number;
}

export interface SandboxProxy {
  /** Takes a request for a sandbox port (true), or leaves it to the API (false). */
  request(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes a protocol upgrade for a sandbox port (true), or leaves it to others (false). */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Ends every proxied exchange still open (server shutdown). */
  close(): void;
}

/** Headers that describe one hop and are not forwarded. */
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

function forwardHeaders(headers: IncomingHttpHeaders, keepUpgrade: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const isUpgradeHeader = name === "connection" || name === "upgrade";
    if ((HOP_BY_HOP.has(name) || named.has(name)) && !(keepUpgrade && isUpgradeHeader)) continue;
    out[name] = value;
  }
  return out;
}

function notReachableBody(sandboxId: string): string {
  return JSON.stringify({ sandboxId, message: "The sandbox was not found", code: 502 });
}

function isBad(target: ProxyTarget | BadProxyTarget): target is BadProxyTarget {
  return "error" in target;
}

/**
 * Forwards sandbox traffic (`<port>-<id>.<domain>` or the `E2b-Sandbox-Id`/`-Port`
 * headers) to that port at the sandbox's host address: HTTP with bodies streamed both
 * ways as they come, and protocol upgrades (WebSocket) as a raw byte tunnel. It runs in
 * front of the API's routing, so none of the API's auth or body parsing touches it.
 */
export function createSandboxProxy(options: SandboxProxyOptions): SandboxProxy {
  const { logger, domain, resolve } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const open = new Set<Duplex>();

  function track(socket: Duplex): void {
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  }

  /** Bounds connecting only: an open stream may stay quiet for long. */
  function boundConnect(upstream: ClientRequest): void {
    upstream.on("socket", (socket) => {
      if (!socket.connecting) return;
      const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), connectTimeoutMs);
      socket.once("connect", () => clearTimeout(timer));
      socket.once("close", () => clearTimeout(timer));
    });
  }

  function forwardedFor(req: IncomingMessage): OutgoingHttpHeaders {
    const prior = req.headers["x-forwarded-for"];
    const remote = req.socket.remoteAddress ?? "";
    return {
      "x-forwarded-for": prior ? `${prior}, ${remote}` : remote,
      "x-forwarded-host": req.headers.host ?? "",
      "x-forwarded-proto": "http",
    };
  }

  function answerJson(res: ServerResponse, status: number, body: string): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
    res.end(body);
  }

  async function proxyRequest(req: IncomingMessage, res: ServerResponse, target: ProxyTarget): Promise<void> {
    const address = await resolve(target.sandboxId);
    if (!address.reachable) {
      req.resume();
      answerJson(res, 502, notReachableBody(target.sandboxId));
      return;
    }
    const upstream: ClientRequest = httpRequest({
      // No pooled connections: a kept-alive one to a VM since paused or destroyed would
      // take the next request and never answer.
      agent: false,
      host: address.hostIp,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...forwardHeaders(req.headers, false), ...forwardedFor(req) },
    });
    boundConnect(upstream);
    upstream.on("response", (upRes) => {
      const headers = forwardHeaders(upRes.headers, false);
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, headers);
      res.flushHeaders();
      upRes.pipe(res);
      upRes.on("error", () => res.destroy());
    });
    upstream.on("error", (err) => {
      logger.debug("sandbox proxy upstream failed", {
        sandboxId: target.sandboxId,
        port: target.port,
        err: err.message,
      });
      answerJson(res, 502, notReachableBody(target.sandboxId));
    });
    // The client going away ends the exchange upstream too (a streaming command, a watch).
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
    track(req.socket);
  }

  async function proxyUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: ProxyTarget,
  ): Promise<void> {
    track(socket);
    const address = await resolve(target.sandboxId);
    if (!address.reachable) {
      const body = notReachableBody(target.sandboxId);
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
      return;
    }
    const upstream = httpRequest({
      agent: false,
      host: address.hostIp,
      port: target.port,
      method: req.method,
      path: req.url,
      headers: { ...forwardHeaders(req.headers, true), ...forwardedFor(req) },
    });
    boundConnect(upstream);
    upstream.on("upgrade", (upRes, upSocket, upHead) => {
      track(upSocket);
      const lines = [`HTTP/1.1 ${upRes.statusCode ?? 101} ${upRes.statusMessage ?? "Switching Protocols"}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        lines.push(`${upRes.rawHeaders[i]}: ${upRes.rawHeaders[i + 1]}`);
      }
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (upHead.length > 0) socket.write(upHead);
      if (head.length > 0) upSocket.write(head);
      upSocket.pipe(socket);
      socket.pipe(upSocket);
      upSocket.on("error", () => socket.destroy());
      socket.on("error", () => upSocket.destroy());
      upSocket.on("close", () => socket.destroy());
      socket.on("close", () => upSocket.destroy());
    });
    upstream.on("response", (upRes) => {
      // The sandbox declined the upgrade: relay its answer and close.
      const lines = [`HTTP/1.1 ${upRes.statusCode ?? 502} ${upRes.statusMessage ?? ""}`];
      for (let i = 0; i < upRes.rawHeaders.length; i += 2) {
        const name = upRes.rawHeaders[i] ?? "";
        if (HOP_BY_HOP.has(name.toLowerCase())) continue;
        lines.push(`${name}: ${upRes.rawHeaders[i + 1]}`);
      }
      lines.push("connection: close");
      socket.write(`${lines.join("\r\n")}\r\n\r\n`);
      upRes.pipe(socket);
    });
    upstream.on("error", () => {
      const body = notReachableBody(target.sandboxId);
      socket.end(
        `HTTP/1.1 502 Bad Gateway\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    socket.on("error", () => upstream.destroy());
    upstream.end();
  }

  return {
    request(req, res) {
      const target = parseProxyTarget(req.headers, domain);
      if (!target) return false;
      if (isBad(target)) {
        req.resume();
        answerJson(res, 400, JSON.stringify({ code: 400, message: target.error }));
        return true;
      }
      proxyRequest(req, res, target).catch((err: unknown) => {
        logger.error("sandbox proxy failed", { err, sandboxId: target.sandboxId });
        answerJson(res, 502, notReachableBody(target.sandboxId));
      });
      return true;
    },
    upgrade(req, socket, head) {
      const target = parseProxyTarget(req.headers, domain);
      if (!target) return false;
      if (isBad(target)) {
        socket.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
        return true;
      }
      proxyUpgrade(req, socket, head, target).catch((err: unknown) => {
        logger.error("sandbox proxy upgrade failed", { err, sandboxId: target.sandboxId });
        socket.destroy();
      });
      return true;
    },
    close() {
      for (const socket of open) socket.destroy();
      open.clear();
    },
  };
}
