import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute, type RouteContext } from "../http/route-spec.js";
import { relayVolumeContent } from "./volume-content-relay.js";

/**
 * E2B's volume content API (`Volume.readFile/writeFile/list/makeDir/getInfo/remove/
 * updateMetadata` of the stock SDK): authenticated by the volume's own token (returned with
 * the volume), checked here; the request then goes on, as it came, to the host agent that
 * has the volume's files, which validates it again and does the work.
 */

const TAG = "E2B-compatible volume content";
const Params = z.object({ volumeID: z.string().min(1).max(128) });
const uint32 = z.coerce.number().int().min(0).max(0xffff_ffff);
const PathQuery = z.object({ path: z.string().min(1).max(4096) });
const CreateQuery = PathQuery.extend({
  uid: uint32.optional(),
  gid: uint32.optional(),
  mode: z.coerce.number().int().min(0).max(0o1777).optional(),
  force: z.enum(["true", "false"]).optional(),
});
const EntrySchema = z.object({
  name: z.string(),
  type: z.enum(["unknown", "file", "directory", "symlink"]),
  path: z.string(),
  size: z.number(),
  mode: z.number(),
  uid: z.number(),
  gid: z.number(),
  atime: z.string(),
  mtime: z.string(),
  ctime: z.string(),
  target: z.string().optional(),
});
const Metadata = z
  .object({
    uid: uint32.optional(),
    gid: uint32.optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  })
  .strict();

function bearer(ctx: RouteContext<unknown, unknown, unknown>): string | undefined {
  const header = ctx.request.headers.authorization ?? "";
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  return match?.[1];
}

export function e2bVolumeContentRoutes(services: Services): AnyRouteSpec[] {
  const { volumes } = services;
  const relay = async (ctx: RouteContext<{ volumeID: string }, unknown, unknown>, json?: unknown) =>
    relayVolumeContent(
      await volumes.contentRoute(ctx.params.volumeID, bearer(ctx)),
      ctx.request,
      ctx.reply,
      json,
    );
  const route = (
    method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE",
    kind: "path" | "dir" | "file",
    summary: string,
    extra: Partial<AnyRouteSpec>,
  ): AnyRouteSpec =>
    defineRoute({
      method,
      path: `/volumecontent/{volumeID}/${kind}`,
      summary,
      tag: TAG,
      auth: "none",
      params: Params,
      query: PathQuery,
      responses: { 200: { description: "Done" } },
      handler: (ctx) => relay(ctx),
      ...extra,
    });
  return [
    route("GET", "path", "An entry's type, size, owner, mode and times", {
      responses: { 200: { description: "The entry", schema: EntrySchema } },
    }),
    route("PATCH", "path", "Change an entry's owner or mode", {
      body: Metadata,
      responses: { 200: { description: "The entry", schema: EntrySchema } },
      handler: (ctx) => relay(ctx, ctx.body),
    }),
    route("DELETE", "path", "Remove a file, link or directory tree", {
      responses: { 204: { description: "Removed" } },
    }),
    route("GET", "dir", "List a directory to a depth", {
      query: PathQuery.extend({ depth: z.coerce.number().int().min(1).max(64).optional() }),
      responses: { 200: { description: "The entries", schema: z.array(EntrySchema) } },
    }),
    route("POST", "dir", "Make a directory (force: with its parents)", {
      query: CreateQuery,
      responses: { 201: { description: "The directory", schema: EntrySchema } },
    }),
    route("GET", "file", "Download a file", {
      responses: { 200: { description: "The file's bytes", binary: true } },
    }),
    route("PUT", "file", "Upload a file (force: overwrite)", {
      query: CreateQuery,
      bodyKind: "binary",
      responses: { 201: { description: "The file", schema: EntrySchema } },
    }),
  ];
}
