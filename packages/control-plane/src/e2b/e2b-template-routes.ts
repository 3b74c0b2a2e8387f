import type { Readable } from "node:stream";
import { FilesHashSchema, TagSchema } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import type { FastifyRequest } from "fastify";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { DEFAULT_TAG, parseTemplateRef } from "../services/start-points.js";
import { E2bBuildStartSchema, e2bBuildSpec } from "./e2b-build-spec.js";
import type { UploadLinks } from "./upload-links.js";

const TAG = "E2B-compatible templates";

const TemplateIdParams = z.object({ templateID: z.string().min(1).max(128) });
const BuildParams = TemplateIdParams.extend({ buildID: z.string().min(1).max(128) });
const NamePart = z.string().regex(/^[a-z0-9_-]{1,64}$/, "lowercase letters, digits, '_' and '-'");

/** `name[:tag]` as E2B takes it: lowercased, name and tag checked. */
function templateRef(ref: string): { name: string; tag: string | null } {
  const { name, tag } = parseTemplateRef(ref.trim().toLowerCase());
  const n = NamePart.safeParse(name);
  if (!n.success)
    throw new WrennError(
      "invalid_argument",
      `name: "${name}" is not a template name (${n.error.issues[0]?.message})`,
    );
  if (tag !== null && !TagSchema.safeParse(tag).success) {
    throw new WrennError("invalid_argument", `tag: "${tag}" is not a tag`);
  }
  return { name, tag };
}

/** The absolute base URL the caller reached us at (upload links must be absolute). */
function baseUrl(request: FastifyRequest): string {
  const forwarded = request.headers["x-forwarded-proto"];
  const proto = typeof forwarded === "string" ? forwarded : request.protocol;
  return `${proto}://${request.headers.host ?? "localhost"}`;
}

/**
 * The E2B template-build API as the stock `e2b` SDK (2.x) calls it: request a build, upload
 * copy steps' files through short-lived links, start it, poll its status and logs; aliases
 * and tags. The build itself is Wrenn's (TemplatesService).
 */
export function e2bTemplateRoutes(services: Services, links: UploadLinks): AnyRouteSpec[] {
  const { templates } = services;

  return [
    defineRoute({
      method: "POST",
      path: "/v3/templates",
      summary: "Request a template build (made on its first build)",
      tag: TAG,
      auth: "api_key",
      body: z.object({
        name: z.string().min(1).max(200),
        tags: z.array(TagSchema).max(16).optional(),
        cpuCount: z.number().int().min(1).max(64).optional(),
        memoryMB: z.number().int().min(128).max(262_144).optional(),
        minFreeDiskMb: z.number().int().min(0).optional(),
      }),
      responses: { 202: { description: "The template and its new build" } },
      handler: async (ctx) => {
        const { name, tag } = templateRef(ctx.body.name);
        const tags = [...new Set([tag ?? DEFAULT_TAG, ...(ctx.body.tags ?? [])])];
        const { template, build } = await templates.requestBuild(ctx.principal, {
          name,
          tags,
          vcpus: ctx.body.cpuCount,
          memoryMiB: ctx.body.memoryMB,
        });
        return {
          templateID: template.id,
          buildID: build.id,
          names: [`${name}:${tag ?? DEFAULT_TAG}`],
          tags,
          aliases: [name],
          public: false,
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/templates/{templateID}/files/{hash}",
      summary: "Whether a copy step's files are uploaded, and where to upload them",
      tag: TAG,
      auth: "api_key",
      params: TemplateIdParams.extend({ hash: FilesHashSchema }),
      responses: { 201: { description: "Presence and an upload link" } },
      handler: async (ctx) => {
        await templates.get(ctx.principal, ctx.params.templateID);
        if (await templates.files.present(ctx.principal.teamId, ctx.params.hash)) return { present: true };
        // The SDK sends no API key on the PUT: the link carries whose file it is.
        const token = await links.create(ctx.principal, ctx.params.hash);
        return { present: false, url: `${baseUrl(ctx.request)}/template-uploads/${token}` };
      },
    }),
    defineRoute({
      method: "PUT",
      path: "/template-uploads/{token}",
      summary: "Upload a copy step's archive to a link from the files route",
      tag: TAG,
      auth: "none",
      params: z.object({ token: z.string().min(1).max(128) }),
      bodyKind: "binary",
      responses: { 200: { description: "Stored" } },
      handler: async (ctx) => {
        const link = await links.find(ctx.params.token);
        if (!link) throw new WrennError("not_found", "upload link unknown or expired");
        await templates.putFile(link.principal, link.hash, ctx.body as Readable, false);
        await links.delete(ctx.params.token);
        return {};
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v2/templates/{templateID}/builds/{buildID}",
      summary: "Start a requested build with its steps",
      tag: TAG,
      auth: "api_key",
      params: BuildParams,
      body: E2bBuildStartSchema,
      responses: { 202: { description: "Started" } },
      handler: async (ctx) => {
        await templates.get(ctx.principal, ctx.params.templateID);
        await templates.startBuild(ctx.principal, ctx.params.buildID, e2bBuildSpec(ctx.body));
        return {};
      },
    }),
    defineRoute({
      method: "GET",
      path: "/templates/{templateID}/builds/{buildID}/status",
      summary: "A build's status and its log from an offset",
      tag: TAG,
      auth: "api_key",
      params: BuildParams,
      query: z.object({
        logsOffset: z.coerce.number().int().min(0).default(0),
        limit: z.coerce.number().int().min(1).max(1000).default(100),
      }),
      responses: { 200: { description: "Status" } },
      handler: async (ctx) => {
        const { build, entries } = await templates.logs(
          ctx.principal,
          ctx.params.buildID,
          ctx.query.logsOffset,
          ctx.query.limit,
        );
        const logEntries = entries.map((e) => ({
          timestamp: e.timestamp,
          level: e.level,
          message: e.message,
          step: e.step,
        }));
        return {
          templateID: build.template_id,
          buildID: build.id,
          status: build.status,
          logEntries,
          logs: entries.map((e) => `${e.timestamp} ${e.message}`),
          ...(build.status === "error"
            ? {
                reason: {
                  message: build.error_message ?? "build failed",
                  step: build.error_step ?? undefined,
                  logEntries: [],
                },
              }
            : {}),
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/templates/aliases/{alias}",
      summary: "Whether a template name exists",
      tag: TAG,
      auth: "api_key",
      params: z.object({ alias: z.string().min(1).max(200) }),
      responses: { 200: { description: "The template" } },
      handler: async (ctx) => {
        const template = await templates.get(ctx.principal, templateRef(ctx.params.alias).name);
        return { templateID: template.id, public: false };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/templates/{templateID}/tags",
      summary: "A template's tags",
      tag: TAG,
      auth: "api_key",
      params: TemplateIdParams,
      responses: { 200: { description: "Tags" } },
      handler: async (ctx) => {
        const tags = await templates.tagsOf(ctx.principal, parseTemplateRef(ctx.params.templateID).name);
        return tags.map((t) => ({ tag: t.tag, buildID: t.buildId, createdAt: t.createdAt.toISOString() }));
      },
    }),
    defineRoute({
      method: "POST",
      path: "/templates/tags",
      summary: "Point tags at the build a `name:tag` names",
      tag: TAG,
      auth: "api_key",
      body: z.object({ target: z.string().min(1).max(200), tags: z.array(TagSchema).min(1).max(16) }),
      responses: { 201: { description: "The build and its tags" } },
      handler: async (ctx) => {
        const { name, tag } = templateRef(ctx.body.target);
        const buildId = await templates.assignTags(ctx.principal, name, tag, ctx.body.tags);
        return { buildID: buildId, tags: ctx.body.tags };
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/templates/tags",
      summary: "Remove tags from a template",
      tag: TAG,
      auth: "api_key",
      body: z.object({ name: z.string().min(1).max(200), tags: z.array(TagSchema).min(1).max(16) }),
      responses: { 204: { description: "Removed" } },
      handler: async (ctx) => {
        await templates.removeTags(ctx.principal, templateRef(ctx.body.name).name, ctx.body.tags);
      },
    }),
  ];
}
