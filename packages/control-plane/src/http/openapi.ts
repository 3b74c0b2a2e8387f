import { ErrorBodySchema } from "@wrenn/api";
import { type ZodType, z } from "zod";
import type { AnyRouteSpec } from "./route-spec.js";

function jsonSchema(schema: ZodType, io: "input" | "output"): Record<string, unknown> {
  return z.toJSONSchema(schema, { io, unrepresentable: "any", target: "openapi-3.0" }) as Record<
    string,
    unknown
  >;
}

function parametersOf(schema: ZodType | undefined, where: "path" | "query"): unknown[] {
  if (!schema) return [];
  const doc = jsonSchema(schema, "input") as {
    properties?: Record<string, Record<string, unknown>>;
    required?: string[];
  };
  return Object.entries(doc.properties ?? {}).map(([name, prop]) => ({
    name,
    in: where,
    required: where === "path" || (doc.required ?? []).includes(name),
    schema: prop,
    ...(typeof prop.description === "string" ? { description: prop.description } : {}),
  }));
}

function operationId(route: AnyRouteSpec): string {
  const words = `${route.method.toLowerCase()} ${route.path}`.replace(/[{}]/g, "").split(/[^a-zA-Z0-9]+/);
  return words
    .filter(Boolean)
    .map((w, i) => (i === 0 ? w : w[0]?.toUpperCase() + w.slice(1)))
    .join("");
}

/** The OpenAPI 3 document of the given routes: the REST API's contract. */
export function buildOpenApiDocument(
  routes: readonly AnyRouteSpec[],
  info: { title: string; version: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      responses[status] = {
        description: response.description,
        ...(response.schema
          ? { content: { "application/json": { schema: jsonSchema(response.schema, "output") } } }
          : response.binary
            ? { content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } } }
            : {}),
      };
    }
    responses.default = {
      description: "Error",
      content: { "application/json": { schema: jsonSchema(ErrorBodySchema, "output") } },
    };
    const operation: Record<string, unknown> = {
      operationId: operationId(route),
      summary: route.summary,
      tags: [route.tag],
      parameters: [...parametersOf(route.params, "path"), ...parametersOf(route.query, "query")],
      responses,
      security:
        route.auth === "api_key"
          ? [{ ApiKeyAuth: [] }, { BearerAuth: [] }]
          : route.auth === "host"
            ? [{ HostCredential: [] }]
            : [],
    };
    if (route.bodyKind === "binary") {
      operation.requestBody = {
        required: true,
        content: { "application/octet-stream": { schema: { type: "string", format: "binary" } } },
      };
    } else if (route.body) {
      operation.requestBody = {
        required: true,
        content: { "application/json": { schema: jsonSchema(route.body, "input") } },
      };
    }
    const item = paths[route.path] ?? {};
    item[route.method.toLowerCase()] = operation;
    paths[route.path] = item;
  }
  return {
    openapi: "3.0.3",
    info: { ...info, description: "Wrenn control plane REST API (native /v1 routes)." },
    paths,
    components: {
      securitySchemes: {
        ApiKeyAuth: { type: "apiKey", in: "header", name: "X-API-Key" },
        BearerAuth: { type: "http", scheme: "bearer", description: "API key as a bearer token" },
        HostCredential: { type: "http", scheme: "bearer", description: "host credential (agents)" },
      },
    },
  };
}
