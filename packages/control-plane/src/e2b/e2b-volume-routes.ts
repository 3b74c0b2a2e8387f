import { z } from "zod";
import type { Services } from "../create-services.js";
import type { VolumeRow } from "../db/schema.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";

const TAG = "E2B-compatible volumes";

const E2bVolumeSchema = z.object({ volumeID: z.string(), name: z.string() });
const E2bVolumeWithTokenSchema = E2bVolumeSchema.extend({
  /** Bearer token of the volume's content API (`/volumecontent/{volumeID}/…`). */
  token: z.string(),
});
const VolumeIdParams = z.object({ volumeID: z.string().min(1).max(128) });

const view = (v: VolumeRow) => ({ volumeID: v.id, name: v.name });

/** The volume routes the stock `e2b` SDK calls (`Volume.create/getInfo/list/destroy`). */
export function e2bVolumeRoutes(services: Services): AnyRouteSpec[] {
  const { volumes } = services;
  return [
    defineRoute({
      method: "POST",
      path: "/volumes",
      summary: "Create a volume",
      tag: TAG,
      auth: "api_key",
      body: z.object({
        name: z
          .string()
          .regex(/^[a-zA-Z0-9_-]+$/)
          .max(64),
      }),
      responses: { 201: { description: "The volume", schema: E2bVolumeWithTokenSchema } },
      handler: async (ctx) => {
        const row = await volumes.create(ctx.principal, { name: ctx.body.name });
        return ctx.reply.code(201).send({ ...view(row), token: row.content_token });
      },
    }),
    defineRoute({
      method: "GET",
      path: "/volumes",
      summary: "List the team's volumes",
      tag: TAG,
      auth: "api_key",
      responses: { 200: { description: "Volumes", schema: z.array(E2bVolumeSchema) } },
      handler: async (ctx) => (await volumes.list(ctx.principal)).map(view),
    }),
    defineRoute({
      method: "GET",
      path: "/volumes/{volumeID}",
      summary: "Get a volume",
      tag: TAG,
      auth: "api_key",
      params: VolumeIdParams,
      responses: { 200: { description: "The volume", schema: E2bVolumeWithTokenSchema } },
      handler: async (ctx) => {
        const row = await volumes.get(ctx.principal, ctx.params.volumeID);
        return { ...view(row), token: row.content_token };
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/volumes/{volumeID}",
      summary: "Delete a volume (refused while a sandbox mounts it)",
      tag: TAG,
      auth: "api_key",
      params: VolumeIdParams,
      responses: { 204: { description: "Deleted" } },
      handler: async (ctx) => {
        await volumes.delete(ctx.principal, ctx.params.volumeID);
      },
    }),
  ];
}
