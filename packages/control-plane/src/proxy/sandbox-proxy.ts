import {
  Agent as HttpAgent,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { Duplex } from "node:stream";
import type { TLSSocket } from "node:tls";
import {
  ACTIVITY_HEADER,
  AGENT_TOKEN_HEADER,
  SANDBOX_ID_HEADER,
  SANDBOX_PORT_HEADER,
} from "@wrenn/guest-client";
import type { Logger } from "@wrenn/shared";
import { endSocketWithJson, type RelayTarget, relayRequest, relayUpgrade } from "@wrenn/shared/http-relay";
import { pinnedTlsOptions } from "../drivers/host-pool.js";
import { type BadProxyTarget, type ProxyTarget, parseProxyTarget } from "./proxy-target.js";
import type { SandboxAddress } from "./sandbox-address.js";
import { maskedHost, TRAFFIC_TOKEN_HEADER, trafficRefusal } from "./traffic-access.js";

export interface SandboxProxyOptions {
  logger: Logger;
  /** See `ControlPlaneConfig.sandboxDomain`. */
  domain: string | undefined;
  resolve(sandboxId: string): Promise<SandboxAddress>;
  /**
   * Resumes a paused sandbox that has auto resume (given its team), or joins a resume
   * under way (without); resolves when that has ended either way, undefined when there
   * is nothing to join.
   */
  wake?(sandboxId: string, teamId?: string): Promise<void> | undefined;
  /** How long connecting to a host agent may take. */
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

function notReachableBody(sandboxId: string): string {
  return JSON.stringify({ sandboxId, message: "The sandbox was not found", code: 502 });
}

function forbiddenBody(message: string): string {
  return JSON.stringify({ code: 403, message });
}

function isBad(target: ProxyTarget | BadProxyTarget): target is BadProxyTarget {
  return "error" in target;
}

/**
 * Forwards sandbox traffic (`<port>-<id>.<domain>` or the `E2b-Sandbox-Id`/`-Port`
 * headers) to the traffic listener of the sandbox's host agent, which forwards it on to
 * the sandbox: HTTP with bodies streamed both ways as they come, and protocol upgrades
 * (WebSocket) as a raw byte tunnel. It runs in front of the API's routing, so none of the
 * API's auth or body parsing touches it.
 */
export function createSandboxProxy(options: SandboxProxyOptions): SandboxProxy {
  const { logger, domain } = options;
  const connectTimeoutMs = options.connectTimeoutMs ?? 3000;
  const open = new Set<Duplex>();
  // Kept-alive connections to the host agents' traffic listeners: the agent answers for its
  // sandboxes whatever their state, so a kept connection stays valid while they come and go.
  // Idle ones close after 4 s, before the agent's server would (5 s), so none is reused as it closes.
  const pooling = { keepAlive: true, timeout: 4000 };
  const pools = { "http:": new HttpAgent(pooling), "https:": new HttpsAgent(pooling) };
  // Enrolled agents each have their own pinned certificate: one pool (and its TLS options,
  // which an upgrade's own connection takes too) per pin.
  const pinned = new Map<string, { pool: HttpsAgent; tls: ReturnType<typeof pinnedTlsOptions> }>();

  function pinnedFor(address: SandboxAddress & { reachable: true }) {
    if (address.protocol === "http:" || !address.pin) return undefined;
    const { certPem, fingerprint } = address.pin;
    let entry = pinned.get(fingerprint);
    if (!entry) {
      const tls = pinnedTlsOptions(certPem, fingerprint);
      entry = { pool: new HttpsAgent({ ...pooling, ...tls }), tls };
      pinned.set(fingerprint, entry);
    }
    return entry;
  }

  /**
   * The sandbox's address, after waking it when it is paused with auto resume; or why the
   * request may not reach it (checked before any wake, so a refused request wakes nothing).
   */
  async function resolve(
    target: ProxyTarget,
    headers: IncomingMessage["headers"],
  ): Promise<SandboxAddress | { forbidden: string }> {
    const { sandboxId } = target;
    // A request that arrives while traffic wakes the sandbox waits for that resume: until
    // it ends, the row may already say "running" (state is written before the host acts).
    const underWay = options.wake?.(sandboxId);
    if (underWay) await underWay;
    const address = await options.resolve(sandboxId);
    const refusal = trafficRefusal(address.access, target, headers);
    if (refusal) return { forbidden: refusal };
    if (address.reachable || !address.wakeable || !options.wake) return address;
    await options.wake(sandboxId, address.wakeable.teamId);
    return options.resolve(sandboxId);
  }

  function track(socket: Duplex): void {
    if (open.has(socket)) return; // a kept-alive connection carries many requests
    open.add(socket);
    socket.once("close", () => open.delete(socket));
  }

  function forwardedFor(req: IncomingMessage): OutgoingHttpHeaders {
    const prior = req.headers["x-forwarded-for"];
    const remote = req.socket.remoteAddress ?? "";
    return {
      "x-forwarded-for": prior ? `${prior}, ${remote}` : remote,
      "x-forwarded-host": req.headers.host ?? "",
      "x-forwarded-proto": (req.socket as Partial<TLSSocket>).encrypted ? "https" : "http",
    };
  }

  function relayTarget(
    req: IncomingMessage,
    target: ProxyTarget,
    address: SandboxAddress & { reachable: true },
  ): RelayTarget {
    const pin = pinnedFor(address);
    return {
      protocol: address.protocol,
      host: address.host,
      port: address.port,
      agent: pin?.pool ?? pools[address.protocol],
      tls: pin?.tls,
      headers: {
        ...forwardedFor(req),
        ...maskedHost(address.access, target.port),
        [AGENT_TOKEN_HEADER]: address.agentToken,
        [SANDBOX_ID_HEADER]: target.sandboxId,
        [SANDBOX_PORT_HEADER]: String(target.port),
      },
      // Whatever a client sends as the hop credential or as activity is never passed on.
      drop: [AGENT_TOKEN_HEADER, ACTIVITY_HEADER, TRAFFIC_TOKEN_HEADER],
      connectTimeoutMs,
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
    const address = await resolve(target, req.headers);
    if ("forbidden" in address) {
      req.resume();
      answerJson(res, 403, forbiddenBody(address.forbidden));
      return;
    }
    if (!address.reachable) {
      req.resume();
      answerJson(res, 502, notReachableBody(target.sandboxId));
      return;
    }
    track(req.socket);
    relayRequest(req, res, relayTarget(req, target, address), (err) => {
      logger.debug("sandbox proxy: host agent unreachable", {
        sandboxId: target.sandboxId,
        port: target.port,
        err: err.message,
      });
      answerJson(res, 502, notReachableBody(target.sandboxId));
    });
  }

  async function proxyUpgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: ProxyTarget,
  ): Promise<void> {
    track(socket);
    const address = await resolve(target, req.headers);
    if ("forbidden" in address) {
      endSocketWithJson(socket, 403, "Forbidden", forbiddenBody(address.forbidden));
      return;
    }
    if (!address.reachable) {
      endSocketWithJson(socket, 502, "Bad Gateway", notReachableBody(target.sandboxId));
      return;
    }
    relayUpgrade(req, socket, head, relayTarget(req, target, address), () =>
      endSocketWithJson(socket, 502, "Bad Gateway", notReachableBody(target.sandboxId)),
    );
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
        endSocketWithJson(socket, 400, "Bad Request", JSON.stringify({ code: 400, message: target.error }));
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
      pools["http:"].destroy();
      pools["https:"].destroy();
      for (const { pool } of pinned.values()) pool.destroy();
      pinned.clear();
    },
  };
}
