import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { type Agent, createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import {
  ACTIVITY_HEADER,
  AGENT_TOKEN_HEADER,
  SANDBOX_ID_HEADER,
  SANDBOX_PORT_HEADER,
} from "@wrenn/guest-client";
import type { ErrorCode, Logger } from "@wrenn/shared";
import { listenOn, WRENN_ERROR_CODE_HEADER } from "@wrenn/shared";
import { endSocketWithJson, type RelayTarget, relayRequest, relayUpgrade } from "@wrenn/shared/http-relay";
import { GuestConnectionPools } from "./guest-connection-pools.js";
import { EnvelopeBoundary, endStreamWithError, isConnectStream, OpenExchanges } from "./open-exchanges.js";

export interface SandboxTrafficServerOptions {
  host: string;
  port: number;
  hostToken: string;
  tlsCertPath?: string | undefined;
  tlsKeyPath?: string | undefined;
  /**
   * The address a running sandbox's ports answer on (its slot's host-side IP), or
   * undefined; waits out a lifecycle operation under way (a resume) first.
   */
  sandboxAddress(sandboxId: string): Promise<string | undefined>;
  /**
   * Which VM a running sandbox is now (e.g. its VMM process id; a resume makes a new one).
   * Connections to a guest are kept alive for that VM only; without this none are kept.
   */
  sandboxInstance?(sandboxId: string): string | undefined;
  /** The sandbox's state on this host (undefined when it has none): says why a stream was cut. */
  sandboxState?(sandboxId: string): string | undefined;
  /**
   * Marks activity on a sandbox a request reached (extends its inactivity timeout): only
   * requests of Wrenn's own guest client, which carry `wrenn-activity: 1`.
   */
  touch?(sandboxId: string): void;
  logger: Logger;
  connectTimeoutMs?: number;
  /**
   * Requests for the host itself rather than a sandbox (they name none): served here once
   * the host token checks, e.g. the volume content API.
   */
  hostRoutes?: { prefix: string; serve(req: IncomingMessage, res: ServerResponse): Promise<void> };
}

export interface SandboxTrafficServer {
  readonly port: number;
  close(): Promise<void>;
}

function single(value: string | string[] | undefined): string {
  return (Array.isArray(value) ? value[0] : value)?.trim() ?? "";
}

function tokensEqual(presented: string, expected: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A refusal of the hop itself: the e2b-shaped body e2b clients expect, and the registry
 * code in `wrenn-error-code` for Wrenn's own callers (a missing sandbox is `not_found`,
 * a wrong host token `unavailable`: the caller is fine, the host is misconfigured).
 */
type Routed =
  | { ok: true; sandboxId: string; address: string; port: number; pool: Agent | undefined }
  | { ok: false; status: number; code: ErrorCode; body: string };

function notFound(sandboxId: string): Routed {
  return {
    ok: false,
    status: 502,
    code: "not_found",
    body: JSON.stringify({ sandboxId, message: "The sandbox was not found", code: 502 }),
  };
}

/**
 * The host's door for sandbox traffic: the control plane relays requests here with the
 * host token and the `E2b-Sandbox-Id`/`-Port` headers, and they go on to that port of
 * that sandbox. Nothing without the token gets through; a sandbox that is not running
 * answers 502 in the e2b shape.
 */
export async function startSandboxTrafficServer(
  options: SandboxTrafficServerOptions,
): Promise<SandboxTrafficServer> {
  const { logger } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const exchanges = new OpenExchanges(options.sandboxAddress, undefined, (id) => options.sandboxState?.(id));
  const pools = new GuestConnectionPools();
  const open = new Set<Duplex>();
  const track = (socket: Duplex) => {
    if (open.has(socket)) return; // a kept-alive connection carries many requests
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };

  function badToken(req: IncomingMessage): (Routed & { ok: false }) | undefined {
    if (tokensEqual(single(req.headers[AGENT_TOKEN_HEADER]), options.hostToken)) return undefined;
    return {
      ok: false,
      status: 401,
      code: "unavailable",
      body: JSON.stringify({ code: 401, message: "invalid or missing agent token" }),
    };
  }

  async function route(req: IncomingMessage): Promise<Routed> {
    const refused = badToken(req);
    if (refused) return refused;
    const sandboxId = single(req.headers[SANDBOX_ID_HEADER]);
    const portText = single(req.headers[SANDBOX_PORT_HEADER]);
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (!sandboxId || port < 1 || port > 65535) {
      return {
        ok: false,
        status: 400,
        code: "invalid_argument",
        body: JSON.stringify({
          code: 400,
          message: "E2b-Sandbox-Id and E2b-Sandbox-Port (1-65535) are required",
        }),
      };
    }
    const address = await options.sandboxAddress(sandboxId);
    if (!address) {
      pools.drop(sandboxId);
      return notFound(sandboxId);
    }
    const vm = options.sandboxInstance?.(sandboxId);
    const pool = vm === undefined ? undefined : pools.poolFor(sandboxId, `${address}/${vm}`);
    try {
      if (single(req.headers[ACTIVITY_HEADER]) === "1") options.touch?.(sandboxId);
    } catch {
      // Gone since it was routed: the relay finds out and answers for it.
    }
    return { ok: true, sandboxId, address, port, pool };
  }

  function target(routed: { address: string; port: number; pool: Agent | undefined }): RelayTarget {
    return {
      protocol: "http:",
      host: routed.address,
      port: routed.port,
      agent: routed.pool,
      headers: {},
      drop: [AGENT_TOKEN_HEADER, ACTIVITY_HEADER],
      connectTimeoutMs,
    };
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const answer = (refused: Routed & { ok: false }) => {
      req.resume();
      res.writeHead(refused.status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(refused.body),
        [WRENN_ERROR_CODE_HEADER]: refused.code,
      });
      res.end(refused.body);
    };
    const host = options.hostRoutes;
    if (host && req.url?.startsWith(host.prefix) && req.headers[SANDBOX_ID_HEADER] === undefined) {
      const refused = badToken(req);
      if (refused) answer(refused);
      else await host.serve(req, res);
      return;
    }
    const routed = await route(req);
    if (!routed.ok) {
      answer(routed);
      return;
    }
    // A Connect stream cut because its sandbox stopped ends with a Connect error its client
    // can read, when the bytes relayed so far end between two messages; else it is reset.
    let upstream: IncomingMessage | undefined;
    let boundary: EnvelopeBoundary | undefined;
    let cutting = false;
    const forget = exchanges.add(routed.sandboxId, {
      address: routed.address,
      cut: (reason) => {
        // The sandbox stopped running at this address: nothing kept to it may serve again.
        pools.drop(routed.sandboxId);
        if (cutting) return;
        cutting = true;
        if (upstream && boundary?.atBoundary() && !res.writableEnded) {
          const from = upstream;
          from.unpipe(res);
          res.end(endStreamWithError(reason.code, reason.message, reason.wrennCode), () => from.destroy());
        } else res.destroy();
      },
    });
    res.once("close", forget);
    const relayed: RelayTarget = {
      ...target(routed),
      onResponse: (upRes) => {
        upstream = upRes;
        if (!isConnectStream(upRes.headers["content-type"])) return;
        const seen = new EnvelopeBoundary();
        boundary = seen;
        upRes.on("data", (chunk: Buffer) => seen.observe(chunk));
      },
    };
    relayRequest(req, res, relayed, (err) => {
      logger.debug("sandbox traffic: port unreachable", {
        sandboxId: routed.sandboxId,
        port: routed.port,
        err: err.message,
      });
      const failed = notFound(routed.sandboxId);
      if (!failed.ok) answer(failed);
    });
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const routed = await route(req);
    if (!routed.ok) {
      endSocketWithJson(socket, routed.status, "Refused", routed.body);
      return;
    }
    socket.once(
      "close",
      exchanges.add(routed.sandboxId, {
        address: routed.address,
        cut: () => {
          pools.drop(routed.sandboxId);
          socket.destroy();
        },
      }),
    );
    relayUpgrade(req, socket, head, target(routed), () => {
      const failed = notFound(routed.sandboxId);
      if (!failed.ok) endSocketWithJson(socket, failed.status, "Bad Gateway", failed.body);
    });
  }

  const server: Server =
    options.tlsCertPath && options.tlsKeyPath
      ? createTlsServer({ cert: readFileSync(options.tlsCertPath), key: readFileSync(options.tlsKeyPath) })
      : createServer();
  server.on("request", (req: IncomingMessage, res: ServerResponse) => {
    onRequest(req, res).catch((err: unknown) => {
      logger.error("sandbox traffic failed", { err });
      res.destroy();
    });
  });
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    onUpgrade(req, socket, head).catch((err: unknown) => {
      logger.error("sandbox traffic upgrade failed", { err });
      socket.destroy();
    });
  });
  // Streams (a command's output, a large upload) may outlast Node's 5-minute request limit.
  server.requestTimeout = 0;
  server.on("connection", track);
  const port = await listenOn(server, options.port, options.host);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        exchanges.close();
        pools.close();
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
