import {
  CreatedSandboxSchema,
  IdParamsSchema,
  listSchema,
  pageSchema,
  SandboxListQuerySchema,
  SandboxSchema,
  sandboxBodySchemas,
} from "@wrenn/api";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { pageOf } from "../validation.js";
import { createdSandboxView, sandboxView } from "./api-views.js";
import { sandboxNetworkRoute, v1CreateNetwork } from "./sandbox-network-routes.js";

/** Sandboxes: lifecycle (create, list, get, kill, timeout, pause, resume, fork). */
export function sandboxRoutes(
  services: Services,
  limits: { maxTimeoutSec: number; maxForkCount: number },
): AnyRouteSpec[] {
  const sandboxes = services.sandboxes;
  const bodies = sandboxBodySchemas(limits);
  return [
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes",
      summary: "Create a sandbox (from a base template or one of the team's snapshots)",
      tag: "Sandboxes",
      auth: "api_key",
      body: bodies.create,
      responses: { 201: { description: "The running sandbox", schema: CreatedSandboxSchema } },
      handler: async (ctx) => {
        const row = await sandboxes.create(ctx.principal, {
          template: ctx.body.template,
          vcpus: ctx.body.vcpus,
          memoryMiB: ctx.body.memory_mb,
          diskMiB: ctx.body.disk_mb,
          timeoutSec: ctx.body.timeout_sec,
          onTimeout: ctx.body.on_timeout,
          onTimeoutKeepMemory: ctx.body.on_timeout_keep_memory,
          autoResume: ctx.body.auto_resume,
          env: ctx.body.env,
          metadata: ctx.body.metadata,
          volumeMounts: ctx.body.volume_mounts?.map((m) => ({ name: m.volume, path: m.path })),
          network: v1CreateNetwork(ctx.body.network),
          hostTags: ctx.body.host_tags,
        });
        return createdSandboxView(row);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes",
      summary: "List sandboxes (filter by state and metadata; paginated)",
      tag: "Sandboxes",
      auth: "api_key",
      query: SandboxListQuerySchema,
      responses: { 200: { description: "A page of sandboxes", schema: pageSchema(SandboxSchema) } },
      handler: async (ctx) => {
        const rows = await sandboxes.list(ctx.principal, {
          states: ctx.query.state,
          metadata: ctx.query.metadata,
          limit: ctx.query.limit,
          cursor: ctx.query.cursor,
        });
        return pageOf(rows, ctx.query.limit, sandboxView);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}",
      summary: "Get a sandbox",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The sandbox", schema: SandboxSchema } },
      handler: async (ctx) => sandboxView(await sandboxes.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/sandboxes/{id}",
      summary: "Destroy a sandbox",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 204: { description: "Destroyed" } },
      handler: async (ctx) => {
        await sandboxes.destroy(ctx.principal, ctx.params.id);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/ping",
      summary: "Mark activity: extends the inactivity timeout",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The sandbox", schema: SandboxSchema } },
      handler: async (ctx) => sandboxView(await sandboxes.keepAlive(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/timeout",
      summary: "Set the inactivity timeout",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      body: bodies.setTimeout,
      responses: { 200: { description: "The sandbox", schema: SandboxSchema } },
      handler: async (ctx) =>
        sandboxView(await sandboxes.keepAlive(ctx.principal, ctx.params.id, ctx.body.timeout_sec)),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/pause",
      summary: "Pause a running sandbox (memory to disk, or with keep_memory false the disk only; VM gone)",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      body: bodies.pause,
      responses: { 200: { description: "The paused sandbox", schema: SandboxSchema } },
      handler: async (ctx) =>
        sandboxView(
          await sandboxes.pause(ctx.principal, ctx.params.id, { keepMemory: ctx.body.keep_memory }),
        ),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/resume",
      summary: "Resume a paused sandbox",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      body: bodies.resume,
      responses: { 200: { description: "The running sandbox", schema: SandboxSchema } },
      handler: async (ctx) =>
        sandboxView(
          await sandboxes.resume(ctx.principal, ctx.params.id, ctx.body.timeout_sec, {
            reboot: ctx.body.reboot,
          }),
        ),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/fork",
      summary: "Fork a running sandbox into new ones on the same host",
      tag: "Sandboxes",
      auth: "api_key",
      params: IdParamsSchema,
      body: bodies.fork,
      responses: {
        201: {
          description: "The forks, each with its own envd access token",
          schema: listSchema(CreatedSandboxSchema),
        },
      },
      handler: async (ctx) => ({
        items: (await sandboxes.fork(ctx.principal, ctx.params.id, ctx.body.count, ctx.body.metadata)).map(
          createdSandboxView,
        ),
      }),
    }),
    sandboxNetworkRoute(services),
  ];
}
