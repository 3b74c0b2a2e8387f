import {
  type Agent,
  type ClientRequest,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { request as httpsRequest } from "node:https";
import type { Duplex } from "node:stream";
import type { PeerCertificate } from "node:tls";

/**
 * One HTTP hop of sandbox traffic: the control plane relays to a host agent, the agent
 * relays to the sandbox. Bodies stream both ways as they come; protocol upgrades
 * (WebSocket) become a raw byte tunnel. Node built-ins only.
 */

/** Where a relayed exchange goes, and what it adds on the way. */
export interface RelayTarget {
  protocol: "http:" | "https:";
  host: string;
  port: number;
  /** Set on top of the client's end-to-end headers (a hop's own credentials, routing). */
  headers: OutgoingHttpHeaders;
  /** Client headers this hop consumes and does not pass on. */
  drop?: readonly string[];
  /**
   * How long connecting may take: a live target accepts at once, so a slow connect means
   * it just went away (no route answers a SYN). An open stream may stay quiet for long.
   */
  connectTimeoutMs: number;
  /**
   * Kept-alive connections to this target, owned by the hop that knows when they stop being
   * valid; without one every exchange opens its own connection and closes it after.
   */
  agent?: Agent | undefined;
  /**
   * TLS trust for an https target, when not the system's (a pinned certificate): applied to
   * every connection, pooled or not, so an upgrade's own connection is checked the same way.
   */
  tls?:
    | { ca: string; checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined }
    | undefined;
  /** Sees the target's response before its body is piped on (a hop that watches what it relays). */
  onResponse?: ((upstream: IncomingMessage, res: ServerResponse) => void) | undefined;
}

/** Headers that describe one hop and are not forwarded. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
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

/** The end-to-end headers of a message; `keepUpgrade` keeps `connection`/`upgrade` for a tunnel. */
export function endToEndHeaders(
  headers: IncomingHttpHeaders,
  keepUpgrade: boolean,
  drop: readonly string[] = [],
): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const named = new Set(
    String(headers.connection ?? "")
      .split(",")
      .map((h) => h.trim().toLowerCase())
      .filter(Boolean),
  );
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || drop.includes(name)) continue;
    const isUpgradeHeader = name === "connection" || name === "upgrade";
    if ((HOP_BY_HOP_HEADERS.has(name) || named.has(name)) && !(keepUpgrade && isUpgradeHeader)) continue;
    out[name] = value;
  }
  return out;
}

function open(req: IncomingMessage, target: RelayTarget, keepUpgrade: boolean): ClientRequest {
  const request = target.protocol === "https:" ? httpsRequest : httpRequest;
  const upstream = request({
    // Pooled only where the hop gives a pool it invalidates (a connection kept to a VM since
    // paused or replaced would take the next request and never answer); an upgrade's
    // connection becomes its tunnel, so it is never taken from a pool.
    agent: keepUpgrade ? false : (target.agent ?? false),
    ...(target.protocol === "https:" ? target.tls : undefined),
    host: target.host,
    port: target.port,
    method: req.method,
    path: req.url,
    headers: { ...endToEndHeaders(req.headers, keepUpgrade, target.drop), ...target.headers },
  });
  upstream.on("socket", (socket) => {
    if (!socket.connecting) return;
    const timer = setTimeout(() => upstream.destroy(new Error("connect timeout")), target.connectTimeoutMs);
    socket.once("connect", () => clearTimeout(timer));
    socket.once("close", () => clearTimeout(timer));
  });
  return upstream;
}

/**
 * Relays one request and its response. `unreachable` answers when the target cannot be
 * reached or fails before its response starts; a failure after that ends the response.
 */
export function relayRequest(
  req: IncomingMessage,
  res: ServerResponse,
  target: RelayTarget,
  unreachable: (err: Error) => void,
): void {
  const upstream = open(req, target, false);
  upstream.on("response", (upRes) => {
    res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEndHeaders(upRes.headers, false));
    res.flushHeaders();
    target.onResponse?.(upRes, res);
    upRes.pipe(res);
    upRes.on("error", () => res.destroy());
  });
  upstream.on("error", (err) => {
    if (res.headersSent) res.destroy();
    else unreachable(err);
  });
  // The client going away ends the exchange upstream too (a streaming command, a watch).
  res.on("close", () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

/** A raw HTTP/1.1 response head, for answering on an upgrade's socket. */
export function rawResponseHead(status: number, message: string, rawHeaders: readonly string[]): string {
  const lines = [`HTTP/1.1 ${status} ${message}`];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) lines.push(`${rawHeaders[i]}: ${rawHeaders[i + 1]}`);
  return `${lines.join("\r\n")}\r\n\r\n`;
}

/** A JSON answer written straight on an upgrade's socket, which is then closed. */
export function endSocketWithJson(socket: Duplex, status: number, message: string, body: string): void {
  socket.end(
    rawResponseHead(status, message, [
      "content-type",
      "application/json",
      "content-length",
      String(Buffer.byteLength(body)),
      "connection",
      "close",
    ]) + body,
  );
}

/**
 * Relays a protocol upgrade: on the target's 101 the two sockets are piped together; a
 * target that declines gets its answer relayed and the socket closed.
 */
export function relayUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  target: RelayTarget,
  unreachable: (err: Error) => void,
): void {
  const upstream = open(req, target, true);
  upstream.on("upgrade", (upRes, upSocket, upHead) => {
    socket.write(
      rawResponseHead(
        upRes.statusCode ?? 101,
        upRes.statusMessage ?? "Switching Protocols",
        upRes.rawHeaders,
      ),
    );
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
    const kept: string[] = [];
    for (let i = 0; i + 1 < upRes.rawHeaders.length; i += 2) {
      const name = upRes.rawHeaders[i] ?? "";
      if (HOP_BY_HOP_HEADERS.has(name.toLowerCase())) continue;
      kept.push(name, upRes.rawHeaders[i + 1] ?? "");
    }
    kept.push("connection", "close");
    socket.write(rawResponseHead(upRes.statusCode ?? 502, upRes.statusMessage ?? "", kept));
    upRes.pipe(socket);
  });
  upstream.on("error", unreachable);
  socket.on("error", () => upstream.destroy());
  upstream.end();
}
