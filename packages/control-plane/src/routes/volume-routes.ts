import {
  IdParamsSchema,
  listSchema,
  VolumeCreateBodySchema,
  VolumeSchema,
  VolumeWithTokenSchema,
} from "@wrenn/api";
import type { Services } from "../create-services.js";
import type { VolumeRow } from "../db/schema.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";

const view = (v: VolumeRow) => ({
  id: v.id,
  name: v.name,
  host_id: v.host_id,
  size_mib: v.size_mib,
  created_at: v.created_at.toISOString(),
});

/** Create and get show the content API's token: only the team's API keys reach them. */
const viewWithToken = (v: VolumeRow) => ({ ...view(v), content_token: v.content_token });

/** Named persistent volumes of the caller's team, mounted into sandboxes at create. */
export function volumeRoutes(services: Services): AnyRouteSpec[] {
  const { volumes } = services;
  return [
    defineRoute({
      method: "POST",
      path: "/v1/volumes",
      summary: "Create a volume",
      tag: "Volumes",
      auth: "api_key",
      body: VolumeCreateBodySchema,
      responses: { 201: { description: "The volume", schema: VolumeWithTokenSchema } },
      handler: async (ctx) =>
        ctx.reply
          .code(201)
          .send(
            viewWithToken(
              await volumes.create(ctx.principal, { name: ctx.body.name, sizeMiB: ctx.body.size_mib }),
            ),
          ),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/volumes",
      summary: "List the team's volumes",
      tag: "Volumes",
      auth: "api_key",
      responses: { 200: { description: "Volumes", schema: listSchema(VolumeSchema) } },
      handler: async (ctx) => ({ items: (await volumes.list(ctx.principal)).map(view) }),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/volumes/{id}",
      summary: "Get a volume (by id or name)",
      tag: "Volumes",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "The volume", schema: VolumeWithTokenSchema } },
      handler: async (ctx) => viewWithToken(await volumes.get(ctx.principal, ctx.params.id)),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/volumes/{id}",
      summary: "Delete a volume (refused while a sandbox mounts it)",
      tag: "Volumes",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await volumes.delete(ctx.principal, ctx.params.id);
      },
    }),
  ];
}
