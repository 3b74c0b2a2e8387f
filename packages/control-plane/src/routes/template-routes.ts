import type { Readable } from "node:stream";
import {
  BuildLogsQuerySchema,
  BuildLogsSchema,
  BuildSchema,
  BuiltTemplateSchema,
  FilesHashSchema,
  IdParamsSchema,
  listSchema,
  TemplateBuildBodySchema,
  TemplateFilePresenceSchema,
  TemplateSchema,
} from "@wrenn/api";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { templateView } from "./api-views.js";
import { buildView } from "./template-views.js";

const NameParams = z.object({ name: z.string().min(1).max(128) });
const HashParams = z.object({ hash: FilesHashSchema });

/** Templates: listing, builds from steps (with their logs), copy-step archives, deletion. */
export function templateRoutes(services: Services): AnyRouteSpec[] {
  const { templates } = services;
  return [
    defineRoute({
      method: "GET",
      path: "/v1/templates",
      summary: "List templates: the hosts' images, the team's snapshots and built templates",
      tag: "Templates",
      auth: "api_key",
      responses: { 200: { description: "Templates", schema: listSchema(TemplateSchema) } },
      handler: async (ctx) => ({
        items: (await templates.list(ctx.principal)).map((s) =>
          templateView(s.row, { buildStatus: s.buildStatus, tags: s.tags }),
        ),
      }),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/templates",
      summary: "Build a template from steps (made on its first build); poll the build or read its logs",
      tag: "Templates",
      auth: "api_key",
      body: TemplateBuildBodySchema,
      responses: { 202: { description: "The build, queued", schema: BuiltTemplateSchema } },
      handler: async (ctx) => {
        const { name, tags, vcpus, memory_mb, disk_mb, ...spec } = ctx.body;
        const { template, build } = await templates.buildNow(
          ctx.principal,
          {
            name,
            tags: tags.length > 0 ? ["default", ...tags] : [],
            vcpus,
            memoryMiB: memory_mb,
            diskMiB: disk_mb,
          },
          spec,
        );
        return { template: { id: template.id, name: template.name }, build: buildView(build, template.name) };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/templates/{name}",
      summary: "Get a template (by name or id)",
      tag: "Templates",
      auth: "api_key",
      params: NameParams,
      responses: { 200: { description: "The template", schema: TemplateSchema } },
      handler: async (ctx) => {
        const s = await templates.summary(await templates.get(ctx.principal, ctx.params.name));
        return templateView(s.row, { buildStatus: s.buildStatus, tags: s.tags });
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/templates/{name}",
      summary: "Delete a built template; sandboxes made from it keep running",
      tag: "Templates",
      auth: "api_key",
      params: NameParams,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await templates.delete(ctx.principal, ctx.params.name);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/templates/{name}/builds",
      summary: "A template's builds, newest first",
      tag: "Templates",
      auth: "api_key",
      params: NameParams,
      responses: { 200: { description: "Builds", schema: listSchema(BuildSchema) } },
      handler: async (ctx) => {
        const template = await templates.get(ctx.principal, ctx.params.name);
        const builds = await templates.buildsOf(ctx.principal, template.id);
        return { items: builds.map((b) => buildView(b, template.name)) };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/builds/{id}",
      summary: "A template build's status",
      tag: "Templates",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The build", schema: BuildSchema } },
      handler: async (ctx) => {
        const build = await templates.build(ctx.principal, ctx.params.id);
        const template = await templates.get(ctx.principal, build.template_id);
        return buildView(build, template.name);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/builds/{id}/logs",
      summary: "A build's log from an offset (poll with next_offset until the status is ready or error)",
      tag: "Templates",
      auth: "api_key",
      params: IdParamsSchema,
      query: BuildLogsQuerySchema,
      responses: { 200: { description: "Log entries", schema: BuildLogsSchema } },
      handler: async (ctx) => {
        const { build, entries } = await templates.logs(
          ctx.principal,
          ctx.params.id,
          ctx.query.offset,
          ctx.query.limit,
        );
        const last = entries.at(-1);
        return { status: build.status, entries, next_offset: last ? last.offset + 1 : ctx.query.offset };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/template-files/{hash}",
      summary: "Whether a copy step's archive (tar or tar.gz, named by its sha256) is uploaded",
      tag: "Templates",
      auth: "api_key",
      params: HashParams,
      responses: { 200: { description: "Presence", schema: TemplateFilePresenceSchema } },
      handler: async (ctx) => ({
        hash: ctx.params.hash,
        present: await templates.files.present(ctx.principal.teamId, ctx.params.hash),
      }),
    }),
    defineRoute({
      method: "PUT",
      path: "/v1/template-files/{hash}",
      summary: "Upload a copy step's archive (the body, streamed); its sha256 must be the hash",
      tag: "Templates",
      auth: "api_key",
      params: HashParams,
      bodyKind: "binary",
      responses: {
        200: { description: "Stored", schema: z.object({ hash: FilesHashSchema, size: z.number().int() }) },
      },
      handler: async (ctx) => {
        const { size } = await templates.putFile(ctx.principal, ctx.params.hash, ctx.body as Readable, true);
        return { hash: ctx.params.hash, size };
      },
    }),
  ];
}
