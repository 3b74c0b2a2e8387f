import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { HostAgentService } from "@wrenn/proto";
import { WrennError } from "@wrenn/shared";
import { fromHostError } from "./host-errors.js";

export type HostAgentClient = Client<typeof HostAgentService>;

/** What the pool needs to reach one host agent. */
export interface HostEndpoint {
  id: string;
  url: string | null;
  agentToken: string | null;
}

interface PooledClient {
  url: string;
  agentToken: string;
  client: HostAgentClient;
  sessions: Http2SessionManager;
}

/**
 * Connect clients for the registered host agents (HTTP/2, `Authorization: Bearer` with
 * each host's token), one per host, rebuilt when a host's URL or token changes.
 */
export class HostClientPool {
  private readonly clients = new Map<string, PooledClient>();

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

  evict(hostId: string): void {
    const pooled = this.clients.get(hostId);
    if (!pooled) return;
    this.clients.delete(hostId);
    pooled.sessions.abort();
  }

  close(): void {
    for (const id of [...this.clients.keys()]) this.evict(id);
  }
}
