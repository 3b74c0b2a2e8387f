import { HealthSchema } from "@wrenn/api";
import { docsPageHtml } from "../http/docs-page.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import type { HostsService } from "../services/hosts-service.js";

/** Unauthenticated: health, the OpenAPI document and its reference page. */
export function systemRoutes(
  hosts: HostsService,
  databaseKind: "postgres" | "pglite",
  version: string,
  openApi: () => Record<string, unknown>,
): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "GET",
      path: "/health",
      summary: "Version, database kind and each host's state",
      tag: "System",
      auth: "none",
      responses: {
        200: {
          description: "Healthy",
          schema: HealthSchema,
        },
      },
      handler: async () => {
        const summaries = await hosts.summaries();
        return {
          status: "ok" as const,
          version,
          database: databaseKind,
          hosts: summaries.map((h) => ({
            ...h,
            last_seen_at: h.last_seen_at ? h.last_seen_at.toISOString() : null,
          })),
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/openapi.json",
      summary: "This API's OpenAPI 3 document",
      tag: "System",
      auth: "none",
      responses: { 200: { description: "The document" } },
      handler: async () => openApi(),
    }),
    defineRoute({
      method: "GET",
      path: "/docs",
      summary: "API reference page",
      tag: "System",
      auth: "none",
      responses: { 200: { description: "HTML" } },
      handler: async (ctx) => ctx.reply.type("text/html; charset=utf-8").send(docsPageHtml("Wrenn API")),
    }),
  ];
}
