import type { HostRow } from "../db/schema.js";
import type { HostEndpoint } from "../drivers/host-pool.js";

export function endpointOf(host: Pick<HostRow, "id" | "url" | "agent_token">): HostEndpoint {
  return { id: host.id, url: host.url, agentToken: host.agent_token };
}
