import type { Logger } from "@wrenn/shared";
import { errorAnswer, RCODE_REFUSED, RCODE_SERVFAIL, rcode } from "./dns-message.js";
import { queryTcp, queryUdp } from "./upstream-query.js";
import type { HostUpstreams } from "./upstreams.js";

export type DnsTransport = "udp" | "tcp";

/** How long between two "no upstream answers" warnings. */
const WARN_EVERY_MS = 30_000;

/**
 * Sends a query to the host's resolvers one after another until one answers. Each gets
 * `timeoutMs`; one that times out, is unreachable, or answers SERVFAIL/REFUSED hands over to
 * the next (as the C library does with several nameservers). The last one that gave a good
 * answer is asked first next time, so a dead first nameserver costs one timeout, not one
 * per query. When none answers, the answer is SERVFAIL (or the last SERVFAIL/REFUSED an
 * upstream gave). The query goes upstream over the transport it came in on, so a truncated
 * UDP answer reaches the client as truncated and the client retries over TCP.
 */
export class FailoverResolver {
  private preferred = 0;
  private lastWarnAt = -Infinity;

  constructor(
    private readonly upstreams: HostUpstreams,
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {}

  /** The answer to send back; undefined only when `signal` aborted (nothing to send then). */
  async resolve(
    query: Uint8Array,
    transport: DnsTransport,
    signal: AbortSignal,
  ): Promise<Uint8Array | undefined> {
    const list = this.upstreams.current();
    const ask = transport === "udp" ? queryUdp : queryTcp;
    const start = this.preferred % Math.max(1, list.length);
    let fallback: Uint8Array | undefined;
    const failures: string[] = [];
    for (let i = 0; i < list.length; i++) {
      const index = (start + i) % list.length;
      const upstream = list[index];
      if (!upstream) continue;
      const r = await ask(upstream, query, this.timeoutMs, signal);
      if (signal.aborted) return undefined;
      if (!r.ok) {
        failures.push(`${upstream.host}:${upstream.port} ${r.failure}${r.detail ? ` (${r.detail})` : ""}`);
        continue;
      }
      const code = rcode(r.answer);
      if (code === RCODE_SERVFAIL || code === RCODE_REFUSED) {
        fallback = r.answer;
        failures.push(`${upstream.host}:${upstream.port} rcode ${code}`);
        continue;
      }
      if (index !== this.preferred) this.preferred = index;
      return r.answer;
    }
    this.warnNoAnswer(transport, failures);
    return fallback ?? errorAnswer(query, RCODE_SERVFAIL);
  }

  private warnNoAnswer(transport: DnsTransport, failures: string[]): void {
    const now = performance.now();
    if (now - this.lastWarnAt < WARN_EVERY_MS) return;
    this.lastWarnAt = now;
    this.logger.warn("no DNS upstream answered; sandboxes get SERVFAIL", {
      transport,
      upstreams: this.upstreams.describe(),
      failures,
    });
  }
}
