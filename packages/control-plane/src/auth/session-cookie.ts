import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { WrennError } from "@wrenn/shared";

export const SESSION_COOKIE = "wrenn_session";
export const CSRF_HEADER = "x-csrf-token";

/** The value of one cookie in a Cookie header, or null. */
export function readCookie(header: string | undefined, name: string): string | null {
  if (!header) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || null;
  }
  return null;
}

/** Whether the request arrived on the TLS listener. */
export function cameOverTls(req: IncomingMessage): boolean {
  return Boolean((req.socket as Partial<TLSSocket>).encrypted);
}

/**
 * The Set-Cookie value of a session: httpOnly (scripts never read it), SameSite=Lax (other
 * sites' subrequests and form posts do not carry it), Secure over TLS. maxAgeSec 0 clears it.
 */
export function sessionCookie(token: string, maxAgeSec: number, secure: boolean): string {
  const parts = [`${SESSION_COOKIE}=${token}`, "Path=/", "HttpOnly", "SameSite=Lax", `Max-Age=${maxAgeSec}`];
  if (secure) parts.push("Secure");
  return parts.join("; ");
}

const STATE_CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

export function isStateChanging(method: string | undefined): boolean {
  return STATE_CHANGING.has((method ?? "GET").toUpperCase());
}

/** This server's origin as the request names it (scheme of the listener, Host header). */
function ownOrigin(req: IncomingMessage): string | null {
  const host = req.headers.host;
  return host ? `${cameOverTls(req) ? "https" : "http"}://${host.toLowerCase()}` : null;
}

function originOf(value: string): string | null {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:" ? url.origin.toLowerCase() : null;
  } catch {
    return null;
  }
}

/**
 * Refuses a request whose Origin (or, without one, Referer) names another site. A request
 * with neither passes: browsers send Origin on every cross-site POST, and the CSRF token
 * still guards state changes.
 */
export function checkSameOrigin(req: IncomingMessage): void {
  const headers: IncomingHttpHeaders = req.headers;
  const claimed = headers.origin ?? headers.referer;
  if (claimed === undefined) return;
  const own = ownOrigin(req);
  if (!own || originOf(claimed) !== own) {
    throw new WrennError(
      "permission_denied",
      "cross-origin request refused (Origin does not match this server)",
    );
  }
}
