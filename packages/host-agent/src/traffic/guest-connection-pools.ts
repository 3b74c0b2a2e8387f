import { Agent } from "node:http";

/**
 * Kept-alive connections from the traffic hop to each running sandbox's guest, one pool per
 * VM instance (the sandbox's address and VMM process). A guest handshake and a fresh
 * connection in envd cost real time under emulation, so requests reuse connections; but a
 * connection kept to a VM since paused would take the next request and never answer, and
 * one kept to a VM since replaced (a resume is a new VMM process, maybe at a new address)
 * would be reset by the new guest. So a pool serves only the instance it was made for: the
 * first request that finds the sandbox under another instance, or not running, drops it
 * and destroys its sockets.
 */
/** How long a connection to a guest may sit idle in a pool. */
const IDLE_MS = 4000;

export class GuestConnectionPools {
  private readonly pools = new Map<string, { instance: string; agent: Agent }>();

  /** The pool for this instance of the sandbox; a pool for any other instance is dropped. */
  poolFor(sandboxId: string, instance: string): Agent {
    const existing = this.pools.get(sandboxId);
    if (existing?.instance === instance) return existing.agent;
    if (existing) this.drop(sandboxId);
    this.sweep();
    // An idle connection is closed after a few seconds (and never after the guest's own
    // keep-alive hint): a guest woken for nothing but TCP upkeep is not idle. TCP keep-alive
    // probes are spaced out for the same reason.
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000, timeout: IDLE_MS, maxFreeSockets: 8 });
    this.pools.set(sandboxId, { instance, agent });
    return agent;
  }

  /**
   * Forgets the sandbox's pool (it stopped running here, or moved) and closes its idle
   * connections. Connections still carrying an exchange are left to it: the exchange's own
   * cut ends it (a stream's last message first), and no later request can take them, as
   * nothing asks this pool for a connection again; they close once idle.
   */
  drop(sandboxId: string): void {
    const pool = this.pools.get(sandboxId);
    if (!pool) return;
    this.pools.delete(sandboxId);
    for (const idle of Object.values(pool.agent.freeSockets))
      for (const socket of idle ?? []) socket.destroy();
  }

  /** How many sandboxes have a pool (for tests and diagnostics). */
  get size(): number {
    return this.pools.size;
  }

  /** Closes every connection, busy or idle (the hop is shutting down). */
  close(): void {
    for (const pool of this.pools.values()) pool.agent.destroy();
    this.pools.clear();
  }

  /** Forgets pools left without a connection (their sandbox took no request for a while). */
  private sweep(): void {
    for (const [id, pool] of this.pools) {
      const busy = Object.keys(pool.agent.sockets).length + Object.keys(pool.agent.freeSockets).length;
      if (busy === 0) this.drop(id);
    }
  }
}
