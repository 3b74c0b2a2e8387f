/**
 * The host agent's traffic hop: an authenticated HTTP listener on each host (its port is
 * in the agent's Ping) that forwards a request to one port of one running sandbox. The
 * control plane's proxy, its `/v1` guest operations and the tests all reach envd this way.
 */

/** The hop's credential: the host token, in a header of its own so `authorization` passes through. */
export const AGENT_TOKEN_HEADER = "wrenn-agent-token";
export const SANDBOX_ID_HEADER = "e2b-sandbox-id";
export const SANDBOX_PORT_HEADER = "e2b-sandbox-port";
/**
 * Sent by Wrenn's own guest client (the `/v1` API): the request is use of the sandbox and
 * extends its inactivity timeout. Sandbox traffic relayed for clients (the e2b proxy) does
 * not carry it (the proxy drops it), so there the timeout stays absolute, as in E2B.
 */
export const ACTIVITY_HEADER = "wrenn-activity";
/** envd's port in every guest. */
export const ENVD_PORT = 49983;

export interface TrafficHopTarget {
  /** The agent's traffic listener, e.g. `http://10.0.0.5:5017`. */
  trafficUrl: string;
  /** The host token. */
  hostToken: string;
  sandboxId: string;
  /** The sandbox's envd access token (sent as `x-access-token`). */
  accessToken: string;
}

/** The headers that take a request through the hop to a sandbox's envd. */
export function trafficHopHeaders(target: Omit<TrafficHopTarget, "trafficUrl">): Record<string, string> {
  return {
    [AGENT_TOKEN_HEADER]: target.hostToken,
    [SANDBOX_ID_HEADER]: target.sandboxId,
    [SANDBOX_PORT_HEADER]: String(ENVD_PORT),
    [ACTIVITY_HEADER]: "1",
    ...(target.accessToken ? { "x-access-token": target.accessToken } : {}),
  };
}
