import { type Enrolment, writeEnrolment } from "../identity/enrolment-file.js";
import type { ControlPlaneClient } from "./control-plane-client.js";
import { withCredentials } from "./control-plane-link.js";

/**
 * Trades a one-time registration token for this agent's first credentials: the control
 * plane Pings the agent back over TLS pinned to `certPem` before it accepts. enrolment.json
 * is written only once the control plane has answered; a refusal leaves nothing but the identity.
 */
export async function enrolAgent(options: {
  client: ControlPlaneClient;
  identityDir: string;
  token: string;
  advertiseUrl: string;
  agentToken: string;
  certPem: string;
  tags: Record<string, string>;
  nowMs?: () => number;
}): Promise<Enrolment> {
  const { client } = options;
  const issued = await client.enrol({
    token: options.token,
    url: options.advertiseUrl,
    agent_token: options.agentToken,
    cert_pem: options.certPem,
    tags: options.tags,
  });
  const enrolment = withCredentials(
    { control_plane_url: client.baseUrl, control_plane_ca_path: client.caPath },
    issued,
    (options.nowMs ?? Date.now)(),
  );
  writeEnrolment(options.identityDir, enrolment);
  return enrolment;
}
