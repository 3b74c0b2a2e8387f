import { Agent as HttpAgent } from "node:http";
import { Agent as HttpsAgent } from "node:https";
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
  client: HostAgentClient;
  sessions: Http2SessionManager;
}

/** Kept-alive connections to one host's traffic listener, shared by every guest client of it. */
interface PooledTraffic {
  baseUrl: string;
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
    const existing = this.clients.get(host.id);
    if (existing && existing.url === host.url && existing.agentToken === host.agentToken)
      return existing.client;
    if (existing) this.evict(host.id);
    const sessions = new Http2SessionManager(host.url, { idleConnectionTimeoutMs: 60_000 });
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
    this.clients.set(host.id, { url: host.url, agentToken: token, client, sessions });
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
    let pooled = this.traffic.get(host.id);
    if (pooled && pooled.baseUrl !== baseUrl) {
      this.evictTraffic(host.id);
      pooled = undefined;
    }
    if (!pooled) {
      const httpAgent =
        agentUrl.protocol === "https:"
          ? new HttpsAgent({ keepAlive: true })
          : new HttpAgent({ keepAlive: true });
      pooled = { baseUrl, httpAgent, dispatcher: new FetchAgent({ keepAliveTimeout: 4000 }) };
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
