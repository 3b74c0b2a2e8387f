import { Resolver } from "node:dns/promises";
import type { HostUpstreams } from "../dns/upstreams.js";
import type { ResolveIpv4 } from "./egress-proxy.js";

/**
 * Resolves names to IPv4 addresses through the same upstreams the DNS forwarder uses (the
 * host's resolvers, or WRENN_DNS_UPSTREAMS), read at each call so a changed resolv.conf applies.
 */
export function upstreamResolver(upstreams: HostUpstreams, timeoutMs: number): ResolveIpv4 {
  return async (name) => {
    const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
    resolver.setServers(
      upstreams.current().map((u) => (u.family === 6 ? `[${u.host}]:${u.port}` : `${u.host}:${u.port}`)),
    );
    return resolver.resolve4(name);
  };
}
