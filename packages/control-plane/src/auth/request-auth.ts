import type { IncomingMessage } from "node:http";
import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { MemberRole, SessionRow } from "../db/schema.js";
import { authenticateApiKey, presentedApiKey } from "./authenticate.js";
import type { Principal } from "./principal.js";
import {
  CSRF_HEADER,
  checkSameOrigin,
  isStateChanging,
  readCookie,
  SESSION_COOKIE,
} from "./session-cookie.js";
import type { SessionStore } from "./sessions.js";

export interface RequestAuthDeps {
  db: Db;
  sessions: SessionStore;
  now: () => Date;
}

export interface RequestIdentity {
  principal: Principal;
  /** Set when a session cookie authenticated the request. */
  session: SessionRow | null;
  role: MemberRole | null;
}

/**
 * A browser session from the request's cookie, or null without one. A state-changing
 * request must come from this server's origin and carry the session's CSRF token.
 */
export async function authenticateSession(
  req: IncomingMessage,
  deps: RequestAuthDeps,
): Promise<RequestIdentity | null> {
  const token = readCookie(req.headers.cookie, SESSION_COOKIE);
  if (!token) return null;
  const auth = await deps.sessions.authenticate(token);
  if (isStateChanging(req.method)) {
    checkSameOrigin(req);
    deps.sessions.checkCsrf(auth.session, req.headers[CSRF_HEADER]);
  }
  return { principal: auth.principal, session: auth.session, role: auth.role };
}

/**
 * The caller of a team route: an API key (Authorization: Bearer / X-API-Key), which needs
 * no CSRF token since browsers never send it by themselves, else a session cookie.
 */
export async function authenticateTeamCaller(
  req: IncomingMessage,
  deps: RequestAuthDeps,
): Promise<RequestIdentity> {
  const key = presentedApiKey(req.headers);
  if (key)
    return { principal: await authenticateApiKey(deps.db, key, deps.now()), session: null, role: null };
  const identity = await authenticateSession(req, deps);
  if (!identity) {
    throw new WrennError(
      "unauthenticated",
      "an API key is required (Authorization: Bearer or X-API-Key), or a signed-in session",
    );
  }
  return identity;
}
