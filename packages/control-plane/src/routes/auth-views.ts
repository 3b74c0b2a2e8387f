import type { InvitationView, UserView } from "@wrenn/api";
import type { FastifyReply, FastifyRequest } from "fastify";
import { cameOverTls, sessionCookie } from "../auth/session-cookie.js";
import type { InvitationRow, UserRow } from "../db/schema.js";

export const userView = (u: UserRow): UserView => ({
  id: u.id,
  email: u.email,
  name: u.name,
  created_at: u.created_at.toISOString(),
});

export const invitationView = (i: InvitationRow): InvitationView => ({
  id: i.id,
  email: i.email,
  role: i.role,
  invited_by: i.invited_by,
  created_at: i.created_at.toISOString(),
  expires_at: i.expires_at.toISOString(),
  accepted_at: i.accepted_at?.toISOString() ?? null,
});

/** Sets (maxAgeSec > 0) or clears the session cookie on the reply. */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  maxAgeSec: number,
): void {
  reply.header("set-cookie", sessionCookie(token, maxAgeSec, cameOverTls(request.raw)));
}

/** This server's origin as the request reached it, for links handed back to the caller. */
export function requestOrigin(request: FastifyRequest): string {
  return `${cameOverTls(request.raw) ? "https" : "http"}://${request.headers.host ?? "localhost"}`;
}
