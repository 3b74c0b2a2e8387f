export {
  type DirEntry,
  type ExecResult,
  GuestClient,
  type GuestClientOptions,
  type ProcessLaunch,
  type ProcessTarget,
  type StartOptions,
} from "./guest-client.js";
export { guestError, httpError } from "./guest-errors.js";
export { validateGuestPath } from "./guest-path.js";
export type { ProcessStreamEvent } from "./process-events.js";
export {
  ACTIVITY_HEADER,
  AGENT_TOKEN_HEADER,
  ENVD_PORT,
  SANDBOX_ID_HEADER,
  SANDBOX_PORT_HEADER,
  type TrafficHopTarget,
  trafficHopHeaders,
} from "./traffic-hop.js";
