import { HTTP_STATUS_BY_CODE, type Logger, WrennError } from "@wrenn/shared";
import type { FastifyError, FastifyInstance } from "fastify";
import { databaseUnavailable } from "../db/db-errors.js";
import { type RouteDeps, registerRoute } from "../http/http-app.js";
import type { AnyRouteSpec } from "../http/route-spec.js";

/** The e2b API's error body: the HTTP status again as `code`, and a message. */
export interface E2bErrorBody {
  code: number;
  message: string;
}

/** Any thrown error as the status and body the e2b SDK understands. */
export function e2bError(err: unknown): { status: number; body: E2bErrorBody } {
  let wrenn: WrennError;
  const down = databaseUnavailable(err);
  if (down) wrenn = down;
  else if (err instanceof WrennError) wrenn = err;
  else if (err && typeof err === "object" && "statusCode" in err) {
    // Fastify's own (bad JSON, wrong media type, too large).
    const status = (err as FastifyError).statusCode ?? 500;
    const message = (err as FastifyError).message;
    return { status, body: { code: status, message: status < 500 ? `body: ${message}` : message } };
  } else wrenn = WrennError.from(err);
  const status = HTTP_STATUS_BY_CODE[wrenn.code];
  return { status, body: { code: status, message: wrenn.message } };
}

/**
 * Mounts the e2b-compatible routes in their own Fastify scope, so their errors take the
 * e2b shape while every other route keeps the Wrenn one.
 */
export function registerE2bRoutes(
  app: FastifyInstance,
  routes: readonly AnyRouteSpec[],
  deps: RouteDeps & { logger: Logger },
): void {
  app.register(async (scope) => {
    scope.setErrorHandler((err, request, reply) => {
      const { status, body } = e2bError(err);
      if (status >= 500) {
        deps.logger.error("request failed", { err, url: request.url, reqId: request.id });
      }
      return reply.code(status).send(body);
    });
    for (const route of routes) registerRoute(scope, route, deps);
  });
}
