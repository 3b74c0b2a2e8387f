import type { HostRow } from "../db/schema.js";
import type { HostEndpoint } from "../drivers/host-pool.js";

/** How the pool reaches a host: its URL, its RPC token and, for an enrolled agent, the pinned certificate. */
export function endpointOf(
  host: Pick<HostRow, "id" | "url" | "agent_token" | "cert_pem" | "cert_fingerprint">,
): HostEndpoint {
  return {
    id: host.id,
    url: host.url,
    agentToken: host.agent_token,
    certPem: host.cert_pem,
    certFingerprint: host.cert_fingerprint,
  };
}
