import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { ENVD_PORT } from "@wrenn/guest-client";
import type { ProxyTarget } from "./proxy-target.js";
import type { TrafficAccess } from "./sandbox-address.js";

/** The header a private sandbox's traffic carries its access token in (the e2b SDK's name). */
export const TRAFFIC_TOKEN_HEADER = "e2b-traffic-access-token";

function sameToken(given: string, wanted: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(wanted);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Why a request may not reach a private sandbox's port, or null when it may. envd's port is
 * left to envd, which checks its own access token (the e2b SDK sends no traffic token there).
 */
export function trafficRefusal(
  access: TrafficAccess | undefined,
  target: ProxyTarget,
  headers: IncomingHttpHeaders,
): string | null {
  const wanted = access?.trafficAccessToken;
  if (!wanted || target.port === ENVD_PORT) return null;
  const raw = headers[TRAFFIC_TOKEN_HEADER];
  const given = Array.isArray(raw) ? raw[0] : raw;
  if (given === undefined || given === "") {
    return `sandbox ${target.sandboxId} does not allow public traffic: send its traffic access token in the ${TRAFFIC_TOKEN_HEADER} header`;
  }
  if (!sameToken(given, wanted)) {
    return `the ${TRAFFIC_TOKEN_HEADER} header does not match sandbox ${target.sandboxId}'s traffic access token`;
  }
  return null;
}

/** The placeholder a mask names the target port with (E2B's, literally `${PORT}`). */
const PORT_PLACEHOLDER = "$" + "{PORT}";

/**
 * The Host header the sandbox's server sees: the mask with the placeholder as the target
 * port, or unchanged. envd's port is left alone (the mask is for the user's servers).
 */
export function maskedHost(access: TrafficAccess, port: number): { host: string } | Record<string, never> {
  if (!access.maskRequestHost || port === ENVD_PORT) return {};
  return { host: access.maskRequestHost.replaceAll(PORT_PLACEHOLDER, String(port)) };
}
