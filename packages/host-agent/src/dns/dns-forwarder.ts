import { createSocket, type RemoteInfo, type Socket as UdpSocket } from "node:dgram";
import { createServer, isIP, type Server, type Socket } from "node:net";
import { type Logger, WrennError } from "@wrenn/shared";
import { errorAnswer, isQuery, questionName, RCODE_REFUSED, takeTcpFrames, tcpFrame } from "./dns-message.js";
import { type DnsTransport, FailoverResolver } from "./failover-resolver.js";
import type { HostUpstreams } from "./upstreams.js";

export interface DnsForwarderOptions {
  upstreams: HostUpstreams;
  /** Port the forwarder listens on at every sandbox's address; 0 picks one per sandbox (tests). */
  port: number;
  /** How long one upstream gets before the next is asked. */
  upstreamTimeoutMs: number;
  /** Queries of one sandbox being resolved at once; more are answered REFUSED at once. */
  maxInflightPerSandbox: number;
  /** TCP connections one sandbox may hold open. */
  maxTcpConnectionsPerSandbox?: number | undefined;
  /** A TCP connection with no query for this long is closed (RFC 7766 suggests seconds). */
  tcpIdleTimeoutMs?: number | undefined;
  /**
   * Whether a slot may resolve a name (its egress policy); a query for a name it may not is
   * answered REFUSED without asking upstream. Absent: every name resolves.
   */
  allowsName?: ((slot: number, name: string | undefined) => boolean) | undefined;
  logger: Logger;
}

/** One sandbox's listening sockets and its share of the forwarder. */
interface SandboxListener {
  slot: number;
  address: string;
  port: number;
  udp: UdpSocket;
  tcp: Server;
  connections: Set<Socket>;
  inflight: number;
  /** Aborts the sandbox's in-flight upstream queries when it goes. */
  abort: AbortController;
}

/**
 * The DNS forwarder sandboxes use as their resolver. It listens only on addresses the agent
 * gives it, one per sandbox (the host end of the sandbox's veth, where the sandbox's namespace
 * DNATs the guest's DNS to its gateway), never on a wildcard address: it is not a resolver for
 * anyone else. A sandbox is identified by the socket its query arrived on, so each one has its
 * own bound on queries in flight and TCP connections, and one busy sandbox cannot starve the
 * others.
 */
export class DnsForwarder {
  private readonly listeners = new Map<number, SandboxListener>();
  private readonly resolver: FailoverResolver;
  private readonly maxTcp: number;
  private readonly idleMs: number;

  constructor(private readonly options: DnsForwarderOptions) {
    this.resolver = new FailoverResolver(options.upstreams, options.upstreamTimeoutMs, options.logger);
    this.maxTcp = options.maxTcpConnectionsPerSandbox ?? 16;
    this.idleMs = options.tcpIdleTimeoutMs ?? 10_000;
  }

  /** The configured port (0: each sandbox's own, see `addressOf`). */
  get port(): number {
    return this.options.port;
  }

  /**
   * Starts answering sandbox `slot`'s queries on `address` (UDP and TCP, same port). Replaces
   * a listener the slot already has.
   */
  async attach(slot: number, address: string): Promise<void> {
    await this.detach(slot);
    const listener = await this.bind(slot, address);
    this.listeners.set(slot, listener);
  }

  /** Stops listening for `slot` and abandons its in-flight queries; idempotent. */
  async detach(slot: number): Promise<void> {
    const l = this.listeners.get(slot);
    if (!l) return;
    this.listeners.delete(slot);
    l.abort.abort();
    for (const c of l.connections) c.destroy();
    await Promise.all([
      new Promise<void>((resolve) => l.tcp.close(() => resolve())),
      new Promise<void>((resolve) => closeQuietly(l.udp, resolve)),
    ]);
  }

  /** Where slot's listener is, if it has one. */
  addressOf(slot: number): { address: string; port: number } | undefined {
    const l = this.listeners.get(slot);
    return l ? { address: l.address, port: l.port } : undefined;
  }

  /** Slots with a listener. */
  slots(): number[] {
    return [...this.listeners.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners.keys()].map((slot) => this.detach(slot)));
  }

  private async bind(slot: number, address: string): Promise<SandboxListener> {
    const family = isIP(address);
    if (family !== 4 && family !== 6)
      throw new WrennError("invalid_argument", `not an IP address: ${address}`);
    // With port 0 the UDP socket picks a port and TCP must take the same one; another
    // process can hold it for TCP, so a few picks are tried.
    for (let attempt = 0; ; attempt++) {
      const udp = createSocket(family === 6 ? "udp6" : "udp4");
      let port: number;
      try {
        port = await bindUdp(udp, address, this.options.port);
      } catch (err) {
        closeQuietly(udp);
        throw listenError(slot, address, this.options.port, err);
      }
      const listener: SandboxListener = {
        slot,
        address,
        port,
        udp,
        tcp: createServer(),
        connections: new Set(),
        inflight: 0,
        abort: new AbortController(),
      };
      try {
        await listenTcp(listener.tcp, address, port);
      } catch (err) {
        udp.close();
        if (this.options.port === 0 && attempt < 4 && (err as NodeJS.ErrnoException).code === "EADDRINUSE")
          continue;
        throw listenError(slot, address, port, err);
      }
      udp.on("message", (msg, rinfo) => this.onDatagram(listener, msg, rinfo));
      udp.on("error", (err) => this.options.logger.warn("DNS UDP socket error", { slot, err }));
      listener.tcp.on("connection", (socket) => this.onConnection(listener, socket));
      listener.tcp.on("error", (err) => this.options.logger.warn("DNS TCP listener error", { slot, err }));
      return listener;
    }
  }

  /**
   * Resolves one query within the sandbox's bound: over it, an immediate REFUSED (the client
   * tries again or gives up) rather than a queue that would hold the sandbox's queries ever
   * longer.
   */
  private async answer(
    l: SandboxListener,
    query: Buffer,
    transport: DnsTransport,
  ): Promise<Uint8Array | undefined> {
    if (l.inflight >= this.options.maxInflightPerSandbox) return errorAnswer(query, RCODE_REFUSED);
    const allowsName = this.options.allowsName;
    if (allowsName && !allowsName(l.slot, questionName(query))) return errorAnswer(query, RCODE_REFUSED);
    l.inflight++;
    try {
      return await this.resolver.resolve(query, transport, l.abort.signal);
    } finally {
      l.inflight--;
    }
  }

  private onDatagram(l: SandboxListener, msg: Buffer, rinfo: RemoteInfo): void {
    if (!isQuery(msg)) return;
    this.answer(l, msg, "udp").then(
      (answer) => {
        if (!answer || l.abort.signal.aborted) return;
        l.udp.send(answer, rinfo.port, rinfo.address, () => {});
      },
      (err: unknown) => this.options.logger.error("DNS query failed", { err }),
    );
  }

  private onConnection(l: SandboxListener, socket: Socket): void {
    if (l.connections.size >= this.maxTcp || l.abort.signal.aborted) {
      socket.destroy();
      return;
    }
    l.connections.add(socket);
    socket.on("close", () => l.connections.delete(socket));
    socket.on("error", () => {});
    socket.setTimeout(this.idleMs, () => socket.destroy());
    let buffer: Buffer = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      buffer = buffer.length ? Buffer.concat([buffer, chunk]) : chunk;
      const { messages, rest } = takeTcpFrames(buffer);
      buffer = Buffer.from(rest);
      for (const msg of messages) {
        if (!isQuery(msg)) {
          socket.destroy();
          return;
        }
        // Answers may go back in any order (RFC 7766 §6.2.1.1); the id pairs them.
        this.answer(l, Buffer.from(msg), "tcp").then(
          (answer) => {
            if (answer && !socket.destroyed) socket.write(tcpFrame(answer));
          },
          (err: unknown) => this.options.logger.error("DNS query failed", { err }),
        );
      }
    });
  }
}

function closeQuietly(socket: UdpSocket, done?: () => void): void {
  try {
    socket.close(done);
  } catch {
    done?.(); // not bound or already closed
  }
}

function bindUdp(socket: UdpSocket, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    socket.once("error", reject);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off("error", reject);
      resolve(socket.address().port);
    });
  });
}

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

function listenError(slot: number, address: string, port: number, err: unknown): WrennError {
  const code = (err as NodeJS.ErrnoException).code;
  const hint =
    code === "EADDRINUSE"
      ? " (another DNS server on this host listens on every address? WRENN_DNS_PORT picks another port)"
      : "";
  return new WrennError(
    "unavailable",
    `DNS forwarder for slot ${slot}: cannot listen on ${address}:${port}: ${code ?? String(err)}${hint}`,
    {
      cause: err,
    },
  );
}
