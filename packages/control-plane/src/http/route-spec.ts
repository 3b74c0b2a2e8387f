import type { FastifyReply, FastifyRequest } from "fastify";
import type { ZodType } from "zod";
import type { Principal } from "../auth/principal.js";
import type { MemberRole, SessionRow } from "../db/schema.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/**
 * How a route authenticates. "api_key": a team API key, or a browser session cookie (with
 * its CSRF token on state changes); "session": a session cookie only; "session_optional":
 * a session cookie when there is one; "host": a host credential (agents); "none".
 */
export type AuthMode = "api_key" | "session" | "session_optional" | "host" | "none";

export interface ResponseSpec {
  description: string;
  /** JSON body; absent with `binary` or for empty responses. */
  schema?: ZodType;
  binary?: boolean;
}

export interface RouteContext<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The caller of an `api_key` route. */
  readonly principal: Principal;
  /** The host of a `host` route. */
  readonly hostId: string;
  /** The browser session that authenticated the request; null for API keys and anonymous callers. */
  readonly session: SessionRow | null;
  /** The session user's role in its team; null for API keys. */
  readonly role: MemberRole | null;
  request: FastifyRequest;
  reply: FastifyReply;
}

/**
 * One HTTP route: its input schemas (validated before the handler runs), its responses
 * (documented in /openapi.json) and its handler. The first listed status is the success
 * status; a handler returning `undefined` answers it with no body, one returning the
 * reply has sent the response itself (streams).
 */
export interface RouteSpec<P = unknown, Q = unknown, B = unknown> {
  method: HttpMethod;
  /** OpenAPI-style path, `/v1/sandboxes/{id}`. */
  path: string;
  summary: string;
  tag: string;
  auth: AuthMode;
  /** Management (API keys, members, channels, hosts): a signed-in member is refused; owners and admins pass. */
  manage?: boolean;
  params?: ZodType<P>;
  query?: ZodType<Q>;
  body?: ZodType<B>;
  /** "binary": the request body is a stream (`request.body` is the raw request). */
  bodyKind?: "json" | "binary";
  responses: Record<number, ResponseSpec>;
  handler(ctx: RouteContext<P, Q, B>): Promise<unknown>;
}

/** Identity helper that keeps the spec's generic types inferred from its schemas. */
export function defineRoute<P = undefined, Q = undefined, B = undefined>(
  spec: RouteSpec<P, Q, B>,
): RouteSpec<P, Q, B> {
  return spec;
}

// biome-ignore lint/suspicious/noExplicitAny: a heterogeneous list of routes erases their input types.
export type AnyRouteSpec = RouteSpec<any, any, any>;

/** `/v1/sandboxes/{id}` → `/v1/sandboxes/:id` (Fastify's syntax). */
export function fastifyPath(path: string): string {
  return path.replace(/\{([a-zA-Z_]+)\}/g, ":$1");
}
