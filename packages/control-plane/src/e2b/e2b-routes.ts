import { EnvVarsSchema, MetadataSchema, NameSchema } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import { z } from "zod";
import type { Services } from "../create-services.js";
import type { SandboxRow } from "../db/schema.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { e2bError } from "./e2b-http.js";
import { e2bMetricsRoutes } from "./e2b-metrics-route.js";
import { E2bNetworkSchema, e2bCreateNetwork, e2bNetworkRoute } from "./e2b-network.js";
import { type E2bService, stripTag } from "./e2b-service.js";
import {
  E2bForkResultSchema,
  E2bListedSandboxSchema,
  E2bSandboxDetailSchema,
  E2bSandboxSchema,
  E2bSnapshotInfoSchema,
  type E2bState,
  e2bDetailView,
  e2bListedView,
  e2bSandboxView,
  e2bSnapshotView,
  STATES_FOR,
  type ViewContext,
} from "./e2b-views.js";

export interface E2bRouteOptions {
  maxTimeoutSec: number;
  defaultTimeoutSec: number;
  maxForkCount: number;
  /** Sandbox traffic domain named in responses (known once listening); null when unset. */
  domain(): string | null;
}

const TAG = "E2B-compatible";

const SandboxIdParams = z.object({ sandboxID: z.string().min(1).max(128) });

/** One decode more than the query string: the SDK URL-encodes each key and value inside it. */
function decodeComponent(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** `metadata=user%3Dabc%26app%3Dprod`: key=value pairs, each key and value URL-encoded. */
const MetadataQuerySchema = z
  .string()
  .max(8192)
  .transform((text) => {
    const pairs: Record<string, string> = {};
    for (const [key, value] of new URLSearchParams(text))
      pairs[decodeComponent(key)] = decodeComponent(value);
    return pairs;
  })
  .pipe(MetadataSchema);

/** `state=running,paused` (or the parameter repeated). */
const StateQuerySchema = z
  .union([z.string(), z.array(z.string())])
  .transform((value) => (Array.isArray(value) ? value : [value]).flatMap((v) => v.split(",")).filter(Boolean))
  .pipe(z.array(z.enum(["running", "paused"])).max(2));

const PaginationSchema = {
  limit: z.coerce.number().int().min(1).max(100).default(100),
  nextToken: z.string().max(512).optional(),
};

/** Features of the e2b API this platform does not offer: refused, never silently ignored. */
function refuseUnsupported(body: { mcp?: unknown }): void {
  if (body.mcp !== undefined && body.mcp !== null) {
    throw new WrennError("invalid_argument", "not supported by this server: mcp");
  }
}

/**
 * The routes the stock `e2b` SDK calls (sandboxes, connect, pause, timeout, metrics,
 * snapshots, fork), answering its field names, status codes and error shape.
 */
export function e2bRoutes(services: Services, e2b: E2bService, options: E2bRouteOptions): AnyRouteSpec[] {
  const { sandboxes } = services;
  const TimeoutSchema = z.number().int().min(1).max(options.maxTimeoutSec);

  async function viewContext(rows: SandboxRow[]): Promise<ViewContext> {
    return { domain: options.domain(), templateId: await e2b.templateIds(rows) };
  }

  const CreateBodySchema = z.object({
    templateID: z.string().min(1).max(128),
    timeout: TimeoutSchema.optional(),
    metadata: MetadataSchema.optional(),
    envVars: EnvVarsSchema.optional(),
    autoPause: z.boolean().optional(),
    autoPauseMemory: z.boolean().optional(),
    autoResume: z.object({ enabled: z.boolean().optional() }).optional(),
    secure: z.boolean().optional().describe("always secured: every sandbox gets an envd access token"),
    allow_internet_access: z.boolean().optional(),
    network: E2bNetworkSchema.optional(),
    mcp: z.unknown().optional(),
    volumeMounts: z
      .array(z.object({ name: z.string().min(1).max(128), path: z.string().min(1).max(4096) }))
      .max(16)
      .optional(),
  });

  const create = (path: string) =>
    defineRoute({
      method: "POST",
      path,
      summary: "Create a sandbox from a template or snapshot",
      tag: TAG,
      auth: "api_key",
      body: CreateBodySchema,
      responses: { 201: { description: "The sandbox", schema: E2bSandboxSchema } },
      handler: async (ctx) => {
        refuseUnsupported(ctx.body);
        const network = e2bCreateNetwork(ctx.body.network, ctx.body.allow_internet_access);
        const autoResume = ctx.body.autoResume?.enabled ?? false;
        // autoPauseMemory only shapes a timeout pause; the SDK refuses it with autoResume too.
        const keepMemory = ctx.body.autoPause ? ctx.body.autoPauseMemory : undefined;
        if (keepMemory === false && autoResume) {
          throw new WrennError(
            "invalid_argument",
            "autoResume cannot be combined with autoPauseMemory=false: a filesystem-only pause is resumed with connect",
          );
        }
        const row = await sandboxes.create(ctx.principal, {
          template: ctx.body.templateID,
          timeoutSec: ctx.body.timeout,
          onTimeout: ctx.body.autoPause ? "pause" : "destroy",
          onTimeoutKeepMemory: keepMemory,
          autoResume,
          env: ctx.body.envVars ?? {},
          metadata: ctx.body.metadata ?? {},
          volumeMounts: ctx.body.volumeMounts,
          network,
        });
        return e2bSandboxView(row, await viewContext([row]));
      },
    });

  const ConnectBodySchema = z.object({ timeout: TimeoutSchema.optional(), memory: z.boolean().optional() });
  const connect = (path: string) =>
    defineRoute({
      method: "POST",
      path,
      summary: "Connect: resume a paused sandbox (201) or refresh a running one (200)",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: ConnectBodySchema,
      responses: {
        200: { description: "It was running", schema: E2bSandboxSchema },
        201: { description: "It was resumed", schema: E2bSandboxSchema },
      },
      handler: async (ctx) => {
        // memory=false (the SDK's onResume 'reboot'): a paused sandbox cold-boots from its disk.
        const { row, resumed } = await e2b.connect(
          ctx.principal,
          ctx.params.sandboxID,
          ctx.body.timeout ?? options.defaultTimeoutSec,
          { reboot: ctx.body.memory === false },
        );
        return ctx.reply.code(resumed ? 201 : 200).send(e2bSandboxView(row, await viewContext([row])));
      },
    });

  return [
    create("/sandboxes"),
    create("/v2/sandboxes"),
    defineRoute({
      method: "GET",
      path: "/v2/sandboxes",
      summary: "List sandboxes (running and paused by default), newest first",
      tag: TAG,
      auth: "api_key",
      query: z.object({
        metadata: MetadataQuerySchema.optional(),
        state: StateQuerySchema.optional(),
        template: z.string().max(128).optional(),
        startedAfter: z.iso.datetime({ offset: true }).optional(),
        order: z.enum(["asc", "desc"]).default("desc"),
        ...PaginationSchema,
      }),
      responses: { 200: { description: "Sandboxes", schema: z.array(E2bListedSandboxSchema) } },
      handler: async (ctx) => {
        const wanted: E2bState[] = ctx.query.state?.length ? ctx.query.state : ["running", "paused"];
        const page = await e2b.list(ctx.principal, {
          states: wanted.flatMap((s) => STATES_FOR[s]),
          metadata: ctx.query.metadata,
          template: ctx.query.template ? stripTag(ctx.query.template) : undefined,
          startedAfter: ctx.query.startedAfter ? new Date(ctx.query.startedAfter) : undefined,
          order: ctx.query.order,
          limit: ctx.query.limit,
          nextToken: ctx.query.nextToken,
        });
        if (page.nextToken) ctx.reply.header("x-next-token", page.nextToken);
        const view = await viewContext(page.items);
        return page.items.map((row) => e2bListedView(row, view));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/sandboxes",
      summary: "List running sandboxes (the older, unpaginated list)",
      tag: TAG,
      auth: "api_key",
      query: z.object({ metadata: MetadataQuerySchema.optional() }),
      responses: { 200: { description: "Sandboxes", schema: z.array(E2bListedSandboxSchema) } },
      handler: async (ctx) => {
        const page = await e2b.list(ctx.principal, {
          states: STATES_FOR.running,
          metadata: ctx.query.metadata,
          order: "desc",
          limit: 10_000,
        });
        const view = await viewContext(page.items);
        return page.items.map((row) => e2bListedView(row, view));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/sandboxes/{sandboxID}",
      summary: "A sandbox's details",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      responses: { 200: { description: "The sandbox", schema: E2bSandboxDetailSchema } },
      handler: async (ctx) => {
        const row = await e2b.live(ctx.principal, ctx.params.sandboxID);
        return e2bDetailView(row, await viewContext([row]));
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/sandboxes/{sandboxID}",
      summary: "Kill a sandbox",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      responses: { 204: { description: "Killed" } },
      handler: async (ctx) => {
        await e2b.kill(ctx.principal, ctx.params.sandboxID);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/sandboxes/{sandboxID}/timeout",
      summary: "Set the timeout, in seconds from now",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: z.object({ timeout: TimeoutSchema }),
      responses: { 204: { description: "Set" } },
      handler: async (ctx) => {
        await e2b.live(ctx.principal, ctx.params.sandboxID);
        await sandboxes.keepAlive(ctx.principal, ctx.params.sandboxID, ctx.body.timeout);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/sandboxes/{sandboxID}/refreshes",
      summary: "Keep a sandbox alive (optionally for a new duration, seconds)",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: z.object({ duration: TimeoutSchema.optional() }),
      responses: { 204: { description: "Refreshed" } },
      handler: async (ctx) => {
        await e2b.live(ctx.principal, ctx.params.sandboxID);
        await sandboxes.keepAlive(ctx.principal, ctx.params.sandboxID, ctx.body.duration);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/sandboxes/{sandboxID}/pause",
      summary:
        "Pause a running sandbox, with memory or (memory=false) its disk only (409 when already paused)",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: z.object({ memory: z.boolean().optional() }),
      responses: { 204: { description: "Paused" } },
      handler: async (ctx) => {
        // memory=false (the SDK's keepMemory false): only the disk is kept; resume reboots it.
        await e2b.pause(ctx.principal, ctx.params.sandboxID, ctx.body.memory !== false);
      },
    }),
    connect("/sandboxes/{sandboxID}/connect"),
    connect("/v2/sandboxes/{sandboxID}/connect"),
    ...e2bMetricsRoutes(services),
    e2bNetworkRoute(services, e2b, TAG),
    defineRoute({
      method: "POST",
      path: "/sandboxes/{sandboxID}/snapshots",
      summary: "Snapshot a sandbox into a template new sandboxes can start from",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: z.object({ name: NameSchema.optional() }),
      responses: { 201: { description: "The snapshot", schema: E2bSnapshotInfoSchema } },
      handler: async (ctx) =>
        e2bSnapshotView(await e2b.createSnapshot(ctx.principal, ctx.params.sandboxID, ctx.body.name)),
    }),
    defineRoute({
      method: "GET",
      path: "/snapshots",
      summary: "The team's snapshots",
      tag: TAG,
      auth: "api_key",
      query: z.object({
        sandboxID: z.string().max(128).optional(),
        name: z.string().max(128).optional(),
        ...PaginationSchema,
      }),
      responses: { 200: { description: "Snapshots", schema: z.array(E2bSnapshotInfoSchema) } },
      handler: async (ctx) => {
        const page = await e2b.listSnapshots(ctx.principal, {
          sandboxId: ctx.query.sandboxID,
          name: ctx.query.name,
          limit: ctx.query.limit,
          nextToken: ctx.query.nextToken,
        });
        if (page.nextToken) ctx.reply.header("x-next-token", page.nextToken);
        return page.items.map(e2bSnapshotView);
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/templates/{templateID}",
      summary: "Delete a snapshot",
      tag: TAG,
      auth: "api_key",
      params: z.object({ templateID: z.string().min(1).max(128) }),
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await e2b.deleteSnapshot(ctx.principal, ctx.params.templateID);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/sandboxes/{sandboxID}/fork",
      summary: "Fork a running sandbox into new ones",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      body: z.object({
        count: z.number().int().min(1).max(options.maxForkCount).default(1),
        timeout: TimeoutSchema.optional(),
      }),
      responses: { 201: { description: "One result per fork", schema: z.array(E2bForkResultSchema) } },
      handler: async (ctx) => {
        const results = await e2b.fork(ctx.principal, ctx.params.sandboxID, ctx.body.count, ctx.body.timeout);
        const view = await viewContext(results.flatMap((r) => ("row" in r ? [r.row] : [])));
        return results.map((r) => {
          if ("row" in r) return { sandbox: e2bSandboxView(r.row, view) };
          const { body } = e2bError(r.error);
          return { error: body };
        });
      },
    }),
  ];
}
