import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { HTTP_STATUS_BY_CODE, type Logger, newRequestId, WrennError } from "@wrenn/shared";
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import { authenticateHost } from "../auth/host-credential.js";
import { type Principal, requireManager } from "../auth/principal.js";
import { authenticateSession, authenticateTeamCaller, type RequestIdentity } from "../auth/request-auth.js";
import type { SessionStore } from "../auth/sessions.js";
import type { Db } from "../db/database.js";
import { databaseUnavailable } from "../db/db-errors.js";
import { parseInput } from "../validation.js";
import { type AnyRouteSpec, fastifyPath, type RouteContext } from "./route-spec.js";

export interface HttpAppOptions {
  logger: Logger;
  bodyLimitBytes: number;
  /** Sees every request first; returns true when it answered it (sandbox traffic). */
  intercept?: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
}

/** Fastify's own failures (bad JSON, wrong media type, too large) in the registry's terms. */
function errorFromFastify(err: FastifyError): WrennError {
  const status = err.statusCode ?? 500;
  if (status === 413) return new WrennError("payload_too_large", err.message, { cause: err });
  if (status === 404) return new WrennError("not_found", err.message, { cause: err });
  if (status >= 400 && status < 500)
    return new WrennError("invalid_argument", `body: ${err.message}`, { cause: err });
  return WrennError.from(err);
}

function toWrennError(err: unknown): WrennError {
  const down = databaseUnavailable(err);
  if (down) return down;
  if (err instanceof WrennError) return err;
  if (
    err &&
    typeof err === "object" &&
    "statusCode" in err &&
    typeof (err as FastifyError).code === "string"
  ) {
    return errorFromFastify(err as FastifyError);
  }
  return WrennError.from(err);
}

/**
 * The Fastify instance with the API's edge behaviour: every error as
 * `{"error":{"code","message"}}` with the registry's status, 404 for unknown routes,
 * binary bodies passed through as streams, a request id on every response.
 */
export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const intercept = options.intercept;
  const app = Fastify({
    ...(intercept
      ? {
          serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
            createServer((req, res) => {
              if (!intercept(req, res)) handler(req, res);
            }),
        }
      : {}),
    logger: false,
    bodyLimit: options.bodyLimitBytes,
    genReqId: () => newRequestId(),
    // Routes validate with zod; Fastify's own schema compiler stays unused.
    ajv: { customOptions: { coerceTypes: false } },
  });
  // Any body that is not JSON reaches binary routes as the raw request stream.
  app.addContentTypeParser("*", (_request, payload, done) => done(null, payload));
  app.addHook("onSend", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  app.setErrorHandler((err, request, reply) => {
    const wrenn = toWrennError(err);
    const status = HTTP_STATUS_BY_CODE[wrenn.code];
    if (status >= 500) {
      options.logger.error("request failed", { err, code: wrenn.code, url: request.url, reqId: request.id });
    }
    return reply.code(status).send(wrenn.toBody());
  });
  app.setNotFoundHandler((request, reply) => {
    const [path, query = ""] = request.url.split("?") as [string, string?];
    let message = `no route ${request.method} ${path}`;
    if (path === "/files" && new URLSearchParams(query).has("signature")) {
      // An e2b signed file URL built for E2B_SANDBOX_URL mode: it names no sandbox.
      message +=
        ": a signed file URL reaches its sandbox only by host name (49983-<sandbox id>.<domain>);" +
        " URLs made under E2B_SANDBOX_URL name no sandbox. Use E2B_DOMAIN (README: full fidelity)";
    }
    return reply.code(404).send(new WrennError("not_found", message).toBody());
  });
  return app;
}

export interface RouteDeps {
  db: Db;
  sessions: SessionStore;
  now: () => Date;
  /** Check every JSON response against its documented schema (tests). */
  validateResponses: boolean;
}

/** Registers one route: authenticate, validate input, run the handler, send its result. */
export function registerRoute(app: FastifyInstance, spec: AnyRouteSpec, deps: RouteDeps): void {
  const successStatus = Number(Object.keys(spec.responses)[0] ?? 200);
  const successSchema = spec.responses[successStatus]?.schema;
  app.route({
    method: spec.method,
    url: fastifyPath(spec.path),
    handler: async (request: FastifyRequest, reply: FastifyReply) => {
      let identity: RequestIdentity | null = null;
      let hostId: string | null = null;
      if (spec.auth === "api_key") {
        identity = await authenticateTeamCaller(request.raw, deps);
      } else if (spec.auth === "session" || spec.auth === "session_optional") {
        identity = await authenticateSession(request.raw, deps);
        if (!identity && spec.auth === "session") {
          throw new WrennError("unauthenticated", "not signed in");
        }
      } else if (spec.auth === "host") {
        hostId = await authenticateHost(deps.db, request.headers.authorization, deps.now());
      }
      const principal: Principal | null = identity?.principal ?? null;
      if (spec.manage && principal) requireManager(principal, `use ${spec.method} ${spec.path}`);
      const params = spec.params ? parseInput(spec.params, request.params, "path") : undefined;
      const query = spec.query ? parseInput(spec.query, request.query, "query") : undefined;
      let body: unknown;
      if (spec.bodyKind === "binary") {
        // A JSON or text body was read by Fastify's own parsers: the stream is spent.
        if (request.body !== undefined && request.body !== request.raw) {
          throw new WrennError("invalid_argument", "send this body as application/octet-stream");
        }
        body = request.raw;
      } else if (spec.body) body = parseInput(spec.body, request.body ?? {}, "body");
      const ctx: RouteContext<unknown, unknown, unknown> = {
        params,
        query,
        body,
        get principal(): Principal {
          if (!principal) throw new WrennError("internal", `${spec.path} has no authenticated team`);
          return principal;
        },
        get hostId(): string {
          if (!hostId) throw new WrennError("internal", `${spec.path} has no authenticated host`);
          return hostId;
        },
        session: identity?.session ?? null,
        role: identity?.role ?? null,
        request,
        reply,
      };
      const result = await spec.handler(ctx);
      if (result === reply) return reply;
      if (result === undefined) return reply.code(successStatus).send();
      if (deps.validateResponses && successSchema) {
        const checked = successSchema.safeParse(result);
        if (!checked.success) {
          throw new WrennError(
            "internal",
            `response of ${spec.method} ${spec.path} does not match its schema: ${checked.error.message}`,
          );
        }
      }
      return reply.code(successStatus).send(result);
    },
  });
}
