/**
 * The routes the stock `e2b` SDK (2.5x) calls, beside `/v1` on the same listener, with the
 * field names and status codes that SDK reads. Errors are `{"code": <status>, "message"}`.
 * Keys come in `X-API-Key` (the SDK's header) or as a Bearer token, as for `/v1`.
 */
import { HTTP_STATUS_BY_CODE, WrennError } from "@wrenn/shared";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { authenticateApiKey, presentedApiKey } from "../auth/authenticate.js";
import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import type { SandboxRow } from "../db/schema.js";
import type { Services } from "../services/services.js";
import { EnvVarsSchema, encodeCursor, MetadataSchema, parseInput } from "../validation.js";

/** What envd reports to the SDK: wire-compatible with E2B's envd 0.6.4 features. */
export const ENVD_VERSION = "0.6.4";
const CLIENT_ID = "wrenn";

const CreateBody = z.object({
  templateID: z.string().min(1).max(128).default("base"),
  timeout: z.number().int().min(1).optional(),
  metadata: MetadataSchema.nullish(),
  envVars: EnvVarsSchema.nullish(),
  autoPause: z.boolean().nullish(),
  secure: z.boolean().nullish(),
});
const TimeoutBody = z.object({ timeout: z.number().int().min(0) });
const ConnectBody = z.object({ timeout: z.number().int().min(1).optional() }).default({});
const ListQuery = z.object({
  metadata: z.string().max(8192).optional(),
  state: z.string().max(64).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(100),
  nextToken: z.string().max(512).optional(),
});

type Handler = (req: FastifyRequest, reply: FastifyReply, principal: Principal) => Promise<unknown>;

export interface E2bRoutesDeps {
  db: Db;
  services: Services;
  now: () => Date;
  /** Sandbox domain the SDK builds `<port>-<id>.<domain>` hosts from; null with `E2B_SANDBOX_URL`. */
  sandboxDomain: string | null;
}

export function registerE2bRoutes(app: FastifyInstance, deps: E2bRoutesDeps): void {
  const { services } = deps;
  const route = (method: "GET" | "POST" | "DELETE", url: string, handler: Handler) => {
    app.route({
      method,
      url,
      handler: async (req, reply) => {
        try {
          const principal = await authenticateApiKey(
            deps.db,
            presentedApiKey({
              authorization: req.headers.authorization,
              "x-api-key": req.headers["x-api-key"],
            }),
            deps.now(),
          );
          const body = await handler(req, reply, principal);
          if (!reply.sent) return reply.send(body ?? "");
        } catch (err) {
          const e = WrennError.from(err);
          const status = HTTP_STATUS_BY_CODE[e.code];
          return reply.code(status).send({ code: status, message: e.message });
        }
      },
    });
  };
  const view = (row: SandboxRow) => ({
    sandboxID: row.id,
    templateID: row.template,
    clientID: CLIENT_ID,
    alias: row.template,
    startedAt: row.created_at.toISOString(),
    endAt: (row.expires_at ?? row.updated_at).toISOString(),
    cpuCount: row.vcpus,
    memoryMB: row.memory_mib,
    diskSizeMB: row.disk_mib,
    metadata: row.metadata,
    state: row.state === "paused" ? "paused" : "running",
    envdVersion: ENVD_VERSION,
    domain: deps.sandboxDomain,
  });
  const created = (row: SandboxRow) => ({
    sandboxID: row.id,
    templateID: row.template,
    clientID: CLIENT_ID,
    alias: row.template,
    envdVersion: ENVD_VERSION,
    envdAccessToken: row.envd_access_token,
    domain: deps.sandboxDomain,
  });
  const id = (req: FastifyRequest) => (req.params as { id: string }).id;

  const create: Handler = async (req, reply, principal) => {
    const body = parseInput(CreateBody, req.body ?? {}, "body");
    const row = await services.sandboxes.create(principal, {
      template: body.templateID,
      timeoutSec: body.timeout,
      // E2B's default on timeout is to kill; autoPause asks for a pause instead.
      onTimeout: body.autoPause ? "pause" : "destroy",
      env: body.envVars ?? {},
      metadata: body.metadata ?? {},
    });
    reply.code(201);
    return created(row);
  };
  route("POST", "/sandboxes", create);
  route("POST", "/v2/sandboxes", create);

  route("GET", "/sandboxes/:id", async (req, _reply, principal) => {
    const row = await services.sandboxes.get(principal, id(req));
    if (row.state === "stopped" || row.state === "error") throw notFound(row.id);
    return view(row);
  });

  route("DELETE", "/sandboxes/:id", async (req, reply, principal) => {
    const row = await services.sandboxes.get(principal, id(req));
    if (row.state === "stopped") throw notFound(row.id);
    await services.sandboxes.destroy(principal, row.id);
    reply.code(204);
  });

  route("POST", "/sandboxes/:id/timeout", async (req, reply, principal) => {
    const body = parseInput(TimeoutBody, req.body ?? {}, "body");
    await services.sandboxes.keepAlive(principal, id(req), Math.max(1, body.timeout));
    reply.code(204);
  });

  route("POST", "/sandboxes/:id/pause", async (req, reply, principal) => {
    const row = await services.sandboxes.get(principal, id(req));
    if (row.state === "paused") throw new WrennError("conflict", `sandbox ${row.id} is already paused`);
    await services.sandboxes.pause(principal, row.id);
    reply.code(204);
  });

  route("POST", "/v2/sandboxes/:id/connect", async (req, reply, principal) => {
    const body = parseInput(ConnectBody, req.body ?? {}, "body");
    const row = await services.sandboxes.get(principal, id(req));
    if (row.state === "paused") {
      const resumed = await services.sandboxes.resume(principal, row.id, body.timeout);
      reply.code(201);
      return created(resumed);
    }
    if (row.state !== "running") throw notFound(row.id);
    if (body.timeout) await services.sandboxes.keepAlive(principal, row.id, body.timeout);
    reply.code(200);
    return created(row);
  });

  route("GET", "/sandboxes/:id/metrics", async (req, _reply, principal) => {
    const m = await services.sandboxes.metrics(principal, id(req));
    const at = m.timestamp ? new Date(Number(m.timestamp.seconds) * 1000) : new Date();
    return [
      {
        timestampUnix: Math.floor(at.getTime() / 1000),
        timestamp: at.toISOString(),
        cpuCount: m.cpuCount,
        cpuUsedPct: m.cpuUsedPct,
        memUsed: Number(m.memUsedBytes),
        memTotal: Number(m.memTotalBytes),
        diskUsed: Number(m.diskUsedBytes),
        diskTotal: Number(m.diskTotalBytes),
      },
    ];
  });

  const list: Handler = async (req, reply, principal) => {
    const query = parseInput(ListQuery, req.query ?? {}, "query");
    const states = query.state
      ? query.state.split(",").map((s) => {
          if (s !== "running" && s !== "paused")
            throw new WrennError("invalid_argument", `query.state: unknown state ${s}`);
          return s;
        })
      : (["running", "paused"] as const);
    const rows = await services.sandboxes.list(principal, {
      states: [...states],
      metadata: query.metadata ? parseMetadataQuery(query.metadata) : undefined,
      limit: query.limit,
      cursor: query.nextToken,
    });
    const more = rows.length > query.limit;
    const page = more ? rows.slice(0, query.limit) : rows;
    const last = page[page.length - 1];
    if (more && last) reply.header("x-next-token", encodeCursor({ createdAt: last.created_at, id: last.id }));
    return page.map(view);
  };
  route("GET", "/v2/sandboxes", list);
  route("GET", "/sandboxes", list);
}

/** The SDK sends `metadata` as a query string of its own: `k=v&k2=v2`, keys and values URI-encoded. */
function parseMetadataQuery(value: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of value.split("&")) {
    if (!pair) continue;
    const at = pair.indexOf("=");
    if (at <= 0) throw new WrennError("invalid_argument", `query.metadata: "${pair}" is not key=value`);
    try {
      out[decodeURIComponent(pair.slice(0, at))] = decodeURIComponent(pair.slice(at + 1));
    } catch {
      throw new WrennError("invalid_argument", `query.metadata: "${pair}" is not URI-encoded`);
    }
  }
  return out;
}

function notFound(id: string): WrennError {
  return new WrennError("not_found", `sandbox ${id} not found`);
}
