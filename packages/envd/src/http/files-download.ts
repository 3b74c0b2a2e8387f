import { open, stat } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import { basename } from "node:path";
import { pipeline } from "node:stream/promises";
import { constants, createGzip } from "node:zlib";
import { isNotFound } from "../filesystem/fs-errors.js";
import { expandAndResolve, InvalidPathError } from "../filesystem/resolve-path.js";
import { chooseEncoding, isIdentityAcceptable } from "./accept-encoding.js";
import { parseRange } from "./byte-range.js";
import { worthCompressing } from "./compressibility.js";
import { userForFileRequest } from "./file-user.js";
import { HttpError, type HttpRoute } from "./http-route.js";
import { headerValue, requireFileAccess } from "./request-auth.js";

/**
 * Download compression. Clients ask for gzip implicitly (undici's fetch, so the SDK, sends
 * "gzip, deflate" on every read), so speed beats ratio: level 1. Output chunks are 256 KiB
 * because undici's decoder crawls on zlib's default 16 KiB ones (200 MiB took minutes,
 * against ~10 s like this).
 */
const GZIP_OPTIONS = { level: constants.Z_BEST_SPEED, chunkSize: 256 * 1024 };
/** File reads of 1 MiB: each chunk costs a write to the socket, dear under emulation. */
const READ_CHUNK_BYTES = 1024 * 1024;

/** RFC 6266 inline disposition with an ASCII fallback and the exact UTF-8 name. */
function contentDisposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `inline; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Pipes the file out with backpressure (memory stays at a few chunks whatever the size).
 * A client hanging up mid-transfer is not an envd error; it just ends the copy.
 */
async function send(
  res: ServerResponse,
  ...streams: [NodeJS.ReadableStream, ...NodeJS.ReadWriteStream[]]
): Promise<void> {
  try {
    await pipeline([...streams, res]);
  } catch (err) {
    if (res.destroyed || (err as { code?: string }).code === "ERR_STREAM_PREMATURE_CLOSE") return;
    throw err;
  }
}

/**
 * GET /files?path=&username=: streams a file (never buffered whole), honouring a single
 * Range (206/416), If-Modified-Since (304) and Accept-Encoding: gzip (for data that
 * compresses; see worthCompressing), with E2B's error
 * bodies: 400 for a directory, 404 for a missing path, 401 for an unknown user.
 */
export const downloadRoute: HttpRoute = {
  method: "GET",
  path: "/files",
  auth: "route",
  async handle(req, res, url, ctx) {
    requireFileAccess(req, url, ctx.state, "read", Date.now());
    const user = await userForFileRequest(url, ctx.state.defaultUser);
    const rawPath = url.searchParams.get("path") ?? "";
    let path: string;
    try {
      path = expandAndResolve(rawPath, user, ctx.state.defaultWorkdir);
    } catch (err) {
      if (err instanceof InvalidPathError)
        throw new HttpError(400, `error expanding and resolving path '${rawPath}': ${err.message}`);
      throw err;
    }
    const info = await stat(path).catch((err: unknown) => {
      if (isNotFound(err)) throw new HttpError(404, `path '${path}' does not exist`);
      throw new HttpError(500, `error checking if path exists '${path}': ${(err as Error).message}`, {
        cause: err,
      });
    });
    if (info.isDirectory()) throw new HttpError(400, `path '${path}' is a directory`);

    const rangeHeader = headerValue(req, "range");
    const acceptEncoding = headerValue(req, "accept-encoding");
    const conditional = headerValue(req, "if-modified-since");
    let encoding = chooseEncoding(acceptEncoding);
    // Ranges and conditionals are answered on the identity bytes (as http.ServeContent does).
    if (rangeHeader || conditional) {
      if (!isIdentityAcceptable(acceptEncoding)) {
        throw new HttpError(406, "identity encoding not acceptable for Range or conditional request");
      }
      encoding = "identity";
    }

    // Open before answering so a permission problem is a clean error, not a cut stream.
    const handle = await open(path, "r").catch((err: unknown) => {
      throw new HttpError(500, `error opening file '${path}': ${(err as Error).message}`, { cause: err });
    });
    const headers: Record<string, string | number> = {
      "content-disposition": contentDisposition(basename(path)),
      "content-type": "application/octet-stream",
      "last-modified": info.mtime.toUTCString(),
      vary: "Accept-Encoding",
    };
    // From here on the handle is either given to a read stream (which closes it when it
    // ends or is destroyed) or closed before answering without a body.
    let streamed = false;
    try {
      if (conditional && !rangeHeader) {
        const since = Date.parse(conditional);
        if (!Number.isNaN(since) && Math.floor(info.mtimeMs / 1000) * 1000 <= since) {
          res.writeHead(304, headers).end();
          return;
        }
      }
      // gzip is what the client accepts, not what it needs: data that does not compress goes
      // out as identity unless the client refuses that.
      if (
        encoding === "gzip" &&
        isIdentityAcceptable(acceptEncoding) &&
        !(await worthCompressing(handle, info.size))
      ) {
        encoding = "identity";
      }
      if (encoding === "gzip") {
        res.writeHead(200, { ...headers, "content-encoding": "gzip" });
        streamed = true;
        await send(
          res,
          handle.createReadStream({ start: 0, highWaterMark: READ_CHUNK_BYTES }),
          createGzip(GZIP_OPTIONS),
        );
        return;
      }
      const range = parseRange(rangeHeader, info.size);
      if (range.kind === "unsatisfiable") {
        res.setHeader("content-range", `bytes */${info.size}`);
        throw new HttpError(416, `invalid range: ${rangeHeader}`);
      }
      headers["accept-ranges"] = "bytes";
      if (range.kind === "range") {
        const { start, end } = range.range;
        res.writeHead(206, {
          ...headers,
          "content-range": `bytes ${start}-${end}/${info.size}`,
          "content-length": end - start + 1,
        });
        streamed = true;
        await send(res, handle.createReadStream({ start, end, highWaterMark: READ_CHUNK_BYTES }));
        return;
      }
      res.writeHead(200, { ...headers, "content-length": info.size });
      if (info.size === 0) {
        res.end();
        return;
      }
      streamed = true;
      // Bounded by the size announced in content-length, even if the file grows meanwhile.
      await send(
        res,
        handle.createReadStream({ start: 0, end: info.size - 1, highWaterMark: READ_CHUNK_BYTES }),
      );
    } finally {
      if (!streamed) await handle.close();
    }
  },
};
