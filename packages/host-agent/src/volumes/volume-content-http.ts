import type { IncomingMessage, ServerResponse } from "node:http";
import { pipeline } from "node:stream/promises";
import { type Logger, WRENN_ERROR_CODE_HEADER, WrennError } from "@wrenn/shared";
import { z } from "zod";
import { VolumeContent } from "./volume-content.js";
import type { VolumeService } from "./volume-service.js";

/**
 * The volume content API on the agent's traffic listener: the control plane checks the
 * caller's volume token and relays `/volumecontent/{volumeID}/{path|dir|file}` here as it
 * came (E2B's routes, query and bodies), with the host token. Errors are JSON
 * `{code, message}` with the registry's status and code header.
 */

export const VOLUME_CONTENT_PREFIX = "/volumecontent/";
const ROUTE = /^\/volumecontent\/([a-z0-9][a-z0-9-]{0,62})\/(path|dir|file)$/;
const MAX_PATCH_BODY = 4096;

const uint32 = z.coerce.number().int().min(0).max(0xffff_ffff);
/**
 * Permission bits and the sticky bit; never setuid or setgid: guests mount volumes without
 * nosuid, so a token holder could otherwise plant a setuid-root program for them.
 */
const mode = (n: z.ZodNumber) =>
  n
    .int()
    .min(0)
    .max(0o7777)
    .refine((m) => (m & 0o6000) === 0, "setuid and setgid bits are not allowed");
const flag = z.enum(["true", "false"]).transform((v) => v === "true");
const PathQuery = z.object({ path: z.string().min(1) });
const ListQuery = PathQuery.extend({ depth: z.coerce.number().int().min(1).max(64).default(1) });
const CreateQuery = PathQuery.extend({
  uid: uint32.optional(),
  gid: uint32.optional(),
  mode: mode(z.coerce.number()).optional(),
  force: flag.optional(),
});
const PatchBody = z
  .object({
    uid: uint32.optional(),
    gid: uint32.optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  })
  .strict();

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const at = issue?.path.join(".") || what;
  throw new WrennError("invalid_argument", `${what}: ${at}: ${issue?.message ?? "invalid"}`);
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: WrennError): void {
  if (res.headersSent) {
    res.destroy(err);
    return;
  }
  const text = JSON.stringify({ code: err.code, message: err.message });
  res.writeHead(err.httpStatus, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    [WRENN_ERROR_CODE_HEADER]: err.code,
  });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_PATCH_BODY) throw new WrennError("payload_too_large", `body over ${MAX_PATCH_BODY} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  } catch {
    throw new WrennError("invalid_argument", "body: not JSON");
  }
}

/** Answers one content request (already past the host token check). */
export async function serveVolumeContent(
  req: IncomingMessage,
  res: ServerResponse,
  volumes: VolumeService | undefined,
  logger: Logger,
): Promise<void> {
  try {
    const url = new URL(req.url ?? "/", "http://agent");
    const match = ROUTE.exec(url.pathname);
    if (!match) throw new WrennError("not_found", `no volume content route ${url.pathname}`);
    const [, volumeId = "", kind] = match;
    if (!volumes?.get(volumeId) || volumes.isDeleting(volumeId)) {
      throw new WrennError("not_found", `volume ${volumeId} not found`);
    }
    const content = new VolumeContent(volumes.hostPath(volumeId));
    const query = Object.fromEntries(url.searchParams);
    const route = `${req.method} ${kind}`;
    switch (route) {
      case "GET path":
        return sendJson(res, 200, await content.stat(parse(PathQuery, query, "query").path));
      case "PATCH path": {
        const { path } = parse(PathQuery, query, "query");
        return sendJson(res, 200, await content.update(path, parse(PatchBody, await readJson(req), "body")));
      }
      case "DELETE path":
        await content.remove(parse(PathQuery, query, "query").path);
        res.writeHead(204).end();
        return;
      case "GET dir": {
        const q = parse(ListQuery, query, "query");
        return sendJson(res, 200, await content.list(q.path, q.depth));
      }
      case "POST dir": {
        const { path, ...options } = parse(CreateQuery, query, "query");
        return sendJson(res, 201, await content.makeDir(path, options));
      }
      case "GET file": {
        const { handle, size } = await content.openFile(parse(PathQuery, query, "query").path);
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": size });
        // pipeline closes the file whichever side ends first (a caller gone already included).
        await pipeline(handle.createReadStream(), res).catch(() => res.destroy());
        return;
      }
      case "PUT file": {
        const { path, ...options } = parse(CreateQuery, query, "query");
        return sendJson(res, 201, await content.writeFile(path, req, options));
      }
      default:
        throw new WrennError(
          "invalid_argument",
          `${req.method} is not served on /volumecontent/{id}/${kind}`,
        );
    }
  } catch (err) {
    const e = WrennError.from(err);
    if (e.code === "internal") logger.warn("volume content request failed", { url: req.url, err });
    req.resume();
    sendError(res, e);
  }
}
