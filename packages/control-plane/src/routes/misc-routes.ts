import {
  AuditLogSchema,
  ChannelCreateBodySchema,
  ChannelSchema,
  CreatedChannelSchema,
  DeliverySchema,
  IdParamsSchema,
  listSchema,
  PaginationQuerySchema,
  pageSchema,
  SnapshotCreateBodySchema,
  SnapshotDeleteQuerySchema,
  TemplateSchema,
} from "@wrenn/api";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import { pageOf } from "../validation.js";
import { auditLogView, channelView, templateView } from "./api-views.js";

/** Snapshots, the audit log and webhook channels. */
export function miscRoutes(services: Services): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "POST",
      path: "/v1/snapshots",
      summary: "Freeze a running or paused sandbox into a named snapshot template",
      tag: "Snapshots",
      auth: "api_key",
      body: SnapshotCreateBodySchema,
      responses: { 201: { description: "The snapshot", schema: TemplateSchema } },
      handler: async (ctx) =>
        templateView(
          await services.snapshots.create(ctx.principal, {
            sandboxId: ctx.body.sandbox_id,
            name: ctx.body.name,
          }),
        ),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/snapshots",
      summary: "List the team's snapshots",
      tag: "Snapshots",
      auth: "api_key",
      responses: { 200: { description: "Snapshots", schema: listSchema(TemplateSchema) } },
      handler: async (ctx) => ({
        items: (await services.snapshots.list(ctx.principal)).map((r) => templateView(r)),
      }),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/snapshots/{name}",
      summary: "Get a snapshot",
      tag: "Snapshots",
      auth: "api_key",
      params: z.object({ name: z.string().min(1).max(128) }),
      responses: { 200: { description: "The snapshot", schema: TemplateSchema } },
      handler: async (ctx) => templateView(await services.snapshots.get(ctx.principal, ctx.params.name)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/snapshots/{name}",
      summary: "Delete a snapshot",
      tag: "Snapshots",
      auth: "api_key",
      params: z.object({ name: z.string().min(1).max(128) }),
      query: SnapshotDeleteQuerySchema,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await services.snapshots.delete(ctx.principal, ctx.params.name, ctx.query.force);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/audit-logs",
      summary: "The team's audit log, oldest first (order=desc: newest first)",
      tag: "Audit",
      auth: "api_key",
      query: PaginationQuerySchema.extend({
        action: z.string().max(128).optional(),
        resource_id: z.string().max(128).optional(),
        order: z.enum(["asc", "desc"]).default("asc"),
      }),
      responses: { 200: { description: "A page of entries", schema: pageSchema(AuditLogSchema) } },
      handler: async (ctx) => {
        const rows = await services.audit.list(ctx.principal, {
          limit: ctx.query.limit,
          cursor: ctx.query.cursor,
          action: ctx.query.action,
          resourceId: ctx.query.resource_id,
          order: ctx.query.order,
        });
        return pageOf(rows, ctx.query.limit, auditLogView);
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/channels",
      summary: "Create a webhook channel (its signing secret is in this response only)",
      tag: "Channels",
      auth: "api_key",
      manage: true,
      body: ChannelCreateBodySchema,
      responses: {
        201: { description: "The channel", schema: CreatedChannelSchema },
      },
      handler: async (ctx) => {
        const row = await services.channels.create(ctx.principal, ctx.body);
        return { ...channelView(row), secret: row.secret };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/channels",
      summary: "List webhook channels",
      tag: "Channels",
      auth: "api_key",
      manage: true,
      responses: { 200: { description: "Channels", schema: listSchema(ChannelSchema) } },
      handler: async (ctx) => ({ items: (await services.channels.list(ctx.principal)).map(channelView) }),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/channels/{id}",
      summary: "Get a webhook channel",
      tag: "Channels",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 200: { description: "The channel", schema: ChannelSchema } },
      handler: async (ctx) => channelView(await services.channels.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/channels/{id}",
      summary: "Delete a webhook channel",
      tag: "Channels",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await services.channels.delete(ctx.principal, ctx.params.id);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/channels/{id}/deliveries",
      summary: "Recent deliveries of a channel",
      tag: "Channels",
      auth: "api_key",
      manage: true,
      params: IdParamsSchema,
      responses: {
        200: {
          description: "Deliveries, newest first",
          schema: listSchema(DeliverySchema),
        },
      },
      handler: async (ctx) => ({
        items: (await services.channels.deliveries(ctx.principal, ctx.params.id)).map((d) => ({
          id: d.id,
          event_id: d.event_id,
          event_type: d.event_type,
          status: d.status,
          attempts: d.attempts,
          last_error: d.last_error,
          created_at: d.created_at.toISOString(),
          delivered_at: d.delivered_at ? d.delivered_at.toISOString() : null,
        })),
      }),
    }),
  ];
}
