import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
import type { PeerCertificate } from "node:tls";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { GuestClient, trafficHopHeaders } from "@wrenn/guest-client";
import { HostAgentService } from "@wrenn/proto";
import { WrennError } from "@wrenn/shared";
import { Agent as FetchAgent } from "undici";
import { fromHostError } from "./host-errors.js";

export type HostAgentClient = Client<typeof HostAgentService>;

/** What the pool needs to reach one host agent. */
export interface HostEndpoint {
  id: string;
  url: string | null;
  agentToken: string | null;
  /** An enrolled agent's self-signed certificate, trusted as its own CA; null: the system's trust. */
  certPem?: string | null | undefined;
  /** Its sha256 fingerprint: the peer must present exactly this certificate. */
  certFingerprint?: string | null | undefined;
}

/**
 * TLS options that trust one enrolled agent and nobody else: its certificate is the only CA
 * and the peer's fingerprint must be the pinned one. Verification stays on (never
 * rejectUnauthorized: false, under which Node ignores a failed identity check); the host
 * name check is replaced by the pin, since the agent's certificate names its advertise host.
 */
export function pinnedTlsOptions(certPem: string, fingerprint: string) {
  return {
    ca: certPem,
    checkServerIdentity: (_host: string, cert: PeerCertificate): Error | undefined =>
      cert.fingerprint256 === fingerprint
        ? undefined
        : Object.assign(
            new Error(`agent certificate ${cert.fingerprint256} is not the pinned ${fingerprint}`),
            {
              code: "ERR_WRENN_CERT_PIN",
            },
          ),
  };
}

function pinOf(host: HostEndpoint): ReturnType<typeof pinnedTlsOptions> | undefined {
  return host.certPem && host.certFingerprint
    ? pinnedTlsOptions(host.certPem, host.certFingerprint)
    : undefined;
}

/** A host's traffic listener, where its sandboxes' guests are reached. */
export interface GuestHost extends HostEndpoint {
  /** The port its Ping reported; null when it has none. */
  trafficPort: number | null;
}

/** One sandbox's envd, as the control plane addresses it. */
export interface GuestSandbox {
  id: string;
  envdAccessToken: string;
}

/** How long one unary guest call (a signal, a listing) may take. */
const GUEST_REQUEST_TIMEOUT_MS = 30_000;

interface PooledClient {
  url: string;
  agentToken: string;
  fingerprint: string | null;
  client: HostAgentClient;
  sessions: Http2SessionManager;
}

/** Kept-alive connections to one host's traffic listener, shared by every guest client of it. */
interface PooledTraffic {
  baseUrl: string;
  fingerprint: string | null;
  httpAgent: HttpAgent;
  dispatcher: FetchAgent;
}

/**
 * Connect clients for the registered host agents (HTTP/2, `Authorization: Bearer` with
 * each host's token), one per host, rebuilt when a host's URL or token changes.
 */
export class HostClientPool {
  private readonly clients = new Map<string, PooledClient>();
  private readonly traffic = new Map<string, PooledTraffic>();

  client(host: HostEndpoint): HostAgentClient {
    if (!host.url || !host.agentToken) {
      throw new WrennError("failed_precondition", `host ${host.id} has not registered an agent yet`);
    }
    const fingerprint = host.certFingerprint ?? null;
    const existing = this.clients.get(host.id);
    if (
      existing &&
      existing.url === host.url &&
      existing.agentToken === host.agentToken &&
      existing.fingerprint === fingerprint
    )
      return existing.client;
    if (existing) this.evict(host.id);
    const sessions = new Http2SessionManager(host.url, { idleConnectionTimeoutMs: 60_000 }, pinOf(host));
    const token = host.agentToken;
    const transport = createConnectTransport({
      baseUrl: host.url,
      httpVersion: "2",
      sessionManager: sessions,
      interceptors: [
        (next) => async (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    });
    const client = createClient(HostAgentService, transport);
    this.clients.set(host.id, { url: host.url, agentToken: token, fingerprint, client, sessions });
    return client;
  }

  /** Runs one RPC against a host, turning its failures into WrennErrors. */
  async call<T>(host: HostEndpoint, rpc: (client: HostAgentClient) => Promise<T>): Promise<T> {
    const client = this.client(host);
    try {
      return await rpc(client);
    } catch (err) {
      throw fromHostError(err, host.id);
    }
  }

  /**
   * A client for one sandbox's envd through its host's traffic listener (the host of the
   * agent's URL, the port its Ping reports), presenting the host token and the sandbox's
   * envd access token. Connections are pooled per host: the listener is the agent's, so a
   * kept-alive one stays valid while sandboxes come and go.
   */
  guest(host: GuestHost, sandbox: GuestSandbox): GuestClient {
    if (!host.url || !host.agentToken) {
      throw new WrennError("failed_precondition", `host ${host.id} has not registered an agent yet`);
    }
    if (!host.trafficPort) {
      throw new WrennError("unavailable", `host ${host.id} has no traffic listener`);
    }
    const agentUrl = new URL(host.url);
    const baseUrl = `${agentUrl.protocol}//${agentUrl.hostname}:${host.trafficPort}`;
    const fingerprint = host.certFingerprint ?? null;
    let pooled = this.traffic.get(host.id);
    if (pooled && (pooled.baseUrl !== baseUrl || pooled.fingerprint !== fingerprint)) {
      this.evictTraffic(host.id);
      pooled = undefined;
    }
    if (!pooled) {
      const pin = pinOf(host);
      const httpAgent =
        agentUrl.protocol === "https:"
          ? new HttpsAgent({ keepAlive: true, ...pin })
          : new HttpAgent({ keepAlive: true });
      const dispatcher = new FetchAgent({ keepAliveTimeout: 4000, ...(pin ? { connect: pin } : {}) });
      pooled = { baseUrl, fingerprint, httpAgent, dispatcher };
      this.traffic.set(host.id, pooled);
    }
    return new GuestClient({
      baseUrl,
      headers: trafficHopHeaders({
        hostToken: host.agentToken,
        sandboxId: sandbox.id,
        accessToken: sandbox.envdAccessToken,
      }),
      requestTimeoutMs: GUEST_REQUEST_TIMEOUT_MS,
      httpAgent: pooled.httpAgent,
      dispatcher: pooled.dispatcher,
    });
  }

  private evictTraffic(hostId: string): void {
    const pooled = this.traffic.get(hostId);
    if (!pooled) return;
    this.traffic.delete(hostId);
    pooled.httpAgent.destroy();
    void pooled.dispatcher.destroy().catch(() => {});
  }

  evict(hostId: string): void {
    this.evictTraffic(hostId);
    const pooled = this.clients.get(hostId);
    if (!pooled) return;
    this.clients.delete(hostId);
    pooled.sessions.abort();
  }

  close(): void {
    for (const id of new Set([...this.clients.keys(), ...this.traffic.keys()])) this.evict(id);
  }
}
