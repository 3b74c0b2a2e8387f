import { timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { Duplex } from "node:stream";
import { type Logger, listenOn } from "@wrenn/shared";
import { endSocketWithJson, type RelayTarget, relayRequest, relayUpgrade } from "@wrenn/shared/http-relay";

/** The hop's credential: the host token, in a header of its own so the client's `authorization` passes through. */
export const AGENT_TOKEN_HEADER = "wrenn-agent-token";
export const SANDBOX_ID_HEADER = "e2b-sandbox-id";
export const SANDBOX_PORT_HEADER = "e2b-sandbox-port";

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
  logger: Logger;
  connectTimeoutMs?: number;
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

type Routed =
  | { ok: true; sandboxId: string; address: string; port: number }
  | { ok: false; status: number; body: string };

function notFound(sandboxId: string): Routed {
  return {
    ok: false,
    status: 502,
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
  const open = new Set<Duplex>();
  const track = (socket: Duplex) => {
    if (open.has(socket)) return; // a kept-alive connection carries many requests
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  };

  async function route(req: IncomingMessage): Promise<Routed> {
    if (!tokensEqual(single(req.headers[AGENT_TOKEN_HEADER]), options.hostToken)) {
      return {
        ok: false,
        status: 401,
        body: JSON.stringify({ code: 401, message: "invalid or missing agent token" }),
      };
    }
    const sandboxId = single(req.headers[SANDBOX_ID_HEADER]);
    const portText = single(req.headers[SANDBOX_PORT_HEADER]);
    const port = /^\d{1,5}$/.test(portText) ? Number(portText) : 0;
    if (!sandboxId || port < 1 || port > 65535) {
      return {
        ok: false,
        status: 400,
        body: JSON.stringify({
          code: 400,
          message: "E2b-Sandbox-Id and E2b-Sandbox-Port (1-65535) are required",
        }),
      };
    }
    const address = await options.sandboxAddress(sandboxId);
    return address ? { ok: true, sandboxId, address, port } : notFound(sandboxId);
  }

  function target(routed: { address: string; port: number }): RelayTarget {
    return {
      protocol: "http:",
      host: routed.address,
      port: routed.port,
      headers: {},
      drop: [AGENT_TOKEN_HEADER],
      connectTimeoutMs,
    };
  }

  async function onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const routed = await route(req);
    const answer = (status: number, body: string) => {
      req.resume();
      res.writeHead(status, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(body),
      });
      res.end(body);
    };
    if (!routed.ok) {
      answer(routed.status, routed.body);
      return;
    }
    relayRequest(req, res, target(routed), (err) => {
      logger.debug("sandbox traffic: port unreachable", {
        sandboxId: routed.sandboxId,
        port: routed.port,
        err: err.message,
      });
      const failed = notFound(routed.sandboxId);
      if (!failed.ok) answer(failed.status, failed.body);
    });
  }

  async function onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const routed = await route(req);
    if (!routed.ok) {
      endSocketWithJson(socket, routed.status, "Refused", routed.body);
      return;
    }
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
  server.on("connection", track);
  const port = await listenOn(server, options.port, options.host);
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
