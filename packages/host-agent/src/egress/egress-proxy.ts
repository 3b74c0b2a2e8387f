import { createServer, isIP, type Server, type Socket, connect as tcpConnect } from "node:net";
import { type Logger, WrennError } from "@wrenn/shared";
import {
  ALL_IPV4,
  isBlockedIpv4,
  type NetworkPolicy,
  parseIpv4,
  policyAllowsDomain,
  policyHasDomains,
} from "@wrenn/shared/network-policy";
import { type ConnectionHello, MAX_HELLO_BYTES, parseConnectionHello } from "./connection-hello.js";

/**
 * Whether a sandbox's DNS may resolve `name` (undefined: a question that could not be read
 * as plain labels). On a deny-all base only names its domain entries allow resolve (none
 * without domain entries: the host's resolvers are no tunnel out of a sandbox cut off from
 * the internet); any other policy resolves every name.
 */
export function policyAllowsName(policy: NetworkPolicy, name: string | undefined): boolean {
  if (!policy.denyOut.includes(ALL_IPV4) && !policyHasDomains(policy)) return true;
  return name !== undefined && policyAllowsDomain(policy, name);
}

/** Resolves a name to IPv4 addresses through the agent's DNS upstreams (never the guest's answer). */
export type ResolveIpv4 = (name: string) => Promise<string[]>;

export interface EgressProxyOptions {
  /** Port on every slot's veth host address (the namespaces' redirects name it). */
  port: number;
  /** The policy a slot enforces now (read per connection, so updates apply at once). */
  policyOf(slot: number): NetworkPolicy;
  resolve: ResolveIpv4;
  /**
   * Addresses the proxy never dials besides ALWAYS_BLOCKED ones: it connects from the host,
   * past the host's forwarding rules, so the host's own addresses and the operator's blocked
   * ranges must be refused here too. Asked per connection (interfaces change).
   */
  refuseTarget?: ((ip: string) => boolean) | undefined;
  /** A client that has not sent its whole hello by then is dropped. */
  helloTimeoutMs?: number | undefined;
  connectTimeoutMs?: number | undefined;
  /** A spliced connection with no traffic either way for this long is closed. */
  idleTimeoutMs?: number | undefined;
  /** Guest connections one slot may hold through the proxy (each is two sockets). */
  maxConnectionsPerSlot?: number | undefined;
  logger: Logger;
}

/** Why a connection was refused (logged at debug; the guest sees a reset). */
export type EgressRefusal =
  | "no_hello"
  | "no_name"
  | "not_allowed"
  | "unresolvable"
  | "blocked_address"
  | "connect_failed"
  | "too_many";

interface SlotListener {
  address: string;
  port: number;
  server: Server;
  /** Every socket of the slot's connections, the guest's and the upstream ones. */
  connections: Set<Socket>;
  /** The guest's connections, with the name each was allowed by once spliced. */
  clients: Map<Socket, string | undefined>;
}

/**
 * The egress proxy for sandboxes whose policy has domain entries. Their namespace DNATs the
 * guest's new TCP to ports 80 and 443 (outside allowed CIDRs) here, to a listener on the host
 * end of the slot's veth, so the listener names the sandbox. It reads the TLS ClientHello
 * (SNI) or the HTTP request head (Host) without consuming it, checks the name against the
 * sandbox's policy, resolves the name itself through the host's resolvers (the address the
 * guest dialled is never used, so a guest cannot pair an allowed name with another address),
 * refuses names that resolve only into ALWAYS_BLOCKED ranges, dials name:443 for TLS and
 * name:80 for HTTP from the host, replays the bytes it read and splices both ways (pipe
 * backpressure, half-close kept). A refused connection is reset.
 */
export class EgressProxy {
  private readonly listeners = new Map<number, SlotListener>();
  private readonly helloMs: number;
  private readonly connectMs: number;
  private readonly idleMs: number;
  private readonly maxConnections: number;

  constructor(private readonly options: EgressProxyOptions) {
    this.helloMs = options.helloTimeoutMs ?? 10_000;
    this.connectMs = options.connectTimeoutMs ?? 10_000;
    this.idleMs = options.idleTimeoutMs ?? 600_000;
    this.maxConnections = options.maxConnectionsPerSlot ?? 256;
  }

  get port(): number {
    return this.options.port;
  }

  /** Starts listening for `slot` at `address` (the host end of its veth); replaces any listener it has. */
  async attach(slot: number, address: string): Promise<void> {
    await this.detach(slot);
    if (isIP(address) !== 4) throw new WrennError("invalid_argument", `not an IPv4 address: ${address}`);
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
    const listener: SlotListener = { address, port: 0, server, connections: new Set(), clients: new Map() };
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: address, port: this.options.port, exclusive: true }, () => {
        server.off("error", reject);
        resolve();
      });
    }).catch((err: unknown) => {
      throw new WrennError(
        "unavailable",
        `egress proxy for slot ${slot}: cannot listen on ${address}:${this.options.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
        { cause: err },
      );
    });
    const bound = server.address();
    listener.port = typeof bound === "object" && bound ? bound.port : this.options.port;
    server.on("connection", (socket) => this.onConnection(slot, listener, socket));
    server.on("error", (err) => this.options.logger.warn("egress proxy listener error", { slot, err }));
    this.listeners.set(slot, listener);
  }

  /** Stops listening for `slot` and closes its connections; idempotent. */
  async detach(slot: number): Promise<void> {
    const l = this.listeners.get(slot);
    if (!l) return;
    this.listeners.delete(slot);
    for (const c of l.connections) c.destroy();
    await new Promise<void>((resolve) => l.server.close(() => resolve()));
  }

  /**
   * The slot's policy changed: its spliced connections whose name the policy no longer
   * allows are closed (new ones are checked as they come).
   */
  policyChanged(slot: number): void {
    const l = this.listeners.get(slot);
    if (!l) return;
    const policy = this.options.policyOf(slot);
    for (const [client, name] of l.clients) {
      if (name !== undefined && !policyAllowsDomain(policy, name)) client.destroy();
    }
  }

  addressOf(slot: number): { address: string; port: number } | undefined {
    const l = this.listeners.get(slot);
    return l ? { address: l.address, port: l.port } : undefined;
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((slot) => this.detach(slot)));
  }

  private onConnection(slot: number, l: SlotListener, client: Socket): void {
    client.on("error", () => {});
    if (l.clients.size >= this.maxConnections) {
      this.refuse(slot, client, "too_many");
      return;
    }
    l.connections.add(client);
    l.clients.set(client, undefined);
    const chunks: Buffer[] = [];
    let received = 0;
    const timer = setTimeout(() => this.refuse(slot, client, "no_hello"), this.helloMs);
    client.on("close", () => {
      clearTimeout(timer);
      l.connections.delete(client);
      l.clients.delete(client);
    });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      const hello = parseConnectionHello(Buffer.concat(chunks));
      if (hello.kind === "more" && received < MAX_HELLO_BYTES) return;
      clearTimeout(timer);
      client.off("data", onData);
      client.off("end", onEnd);
      client.pause();
      this.decide(slot, l, client, hello, Buffer.concat(chunks)).catch((err: unknown) => {
        this.options.logger.warn("egress proxy connection failed", { slot, err });
        client.destroy();
      });
    };
    const onEnd = () => {
      clearTimeout(timer);
      this.refuse(slot, client, "no_hello");
    };
    client.on("data", onData);
    client.on("end", onEnd);
  }

  private async decide(
    slot: number,
    l: SlotListener,
    client: Socket,
    hello: ConnectionHello,
    head: Buffer,
  ): Promise<void> {
    if (hello.kind !== "tls" && hello.kind !== "http") return this.refuse(slot, client, "no_hello");
    const name = hello.name;
    if (!name) return this.refuse(slot, client, "no_name");
    if (!policyAllowsDomain(this.options.policyOf(slot), name))
      return this.refuse(slot, client, "not_allowed", name);
    const addresses = await this.options.resolve(name).catch(() => [] as string[]);
    if (addresses.length === 0) return this.refuse(slot, client, "unresolvable", name);
    const usable = addresses.filter((a) => {
      const ip = parseIpv4(a);
      return ip !== undefined && !isBlockedIpv4(ip) && !this.options.refuseTarget?.(a);
    });
    const target = usable[0];
    if (target === undefined) return this.refuse(slot, client, "blocked_address", name);
    if (client.destroyed) return;
    const port = hello.kind === "tls" ? 443 : 80;
    const upstream = tcpConnect({ host: target, port, allowHalfOpen: true });
    l.connections.add(upstream);
    upstream.on("close", () => l.connections.delete(upstream));
    const connectTimer = setTimeout(() => upstream.destroy(new Error("connect timeout")), this.connectMs);
    upstream.once("connect", () => {
      clearTimeout(connectTimer);
      // The policy may have changed while connecting: checked again before any byte passes.
      if (client.destroyed || !policyAllowsDomain(this.options.policyOf(slot), name)) {
        upstream.destroy();
        return this.refuse(slot, client, "not_allowed", name);
      }
      l.clients.set(client, name);
      this.splice(client, upstream, head);
    });
    upstream.once("error", (err) => {
      clearTimeout(connectTimer);
      if (!upstream.connecting && upstream.bytesWritten > 0) return client.destroy();
      this.refuse(slot, client, "connect_failed", `${name} (${target}:${port}): ${err.message}`);
    });
    client.once("close", () => upstream.destroy());
  }

  /** Replays what was read, then pipes both ways; either side failing ends both. */
  private splice(client: Socket, upstream: Socket, head: Buffer): void {
    upstream.write(head);
    client.pipe(upstream);
    upstream.pipe(client);
    const idle = () => {
      client.destroy();
      upstream.destroy();
    };
    client.setTimeout(this.idleMs, idle);
    upstream.setTimeout(this.idleMs, idle);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    upstream.on("close", (hadError) => {
      if (hadError) client.destroy();
    });
  }

  private refuse(slot: number, client: Socket, reason: EgressRefusal, detail?: string): void {
    this.options.logger.debug("egress proxy refused a connection", { slot, reason, detail });
    if (!client.destroyed) client.resetAndDestroy();
  }
}
