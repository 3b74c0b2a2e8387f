import { open, stat } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { basename, dirname } from "node:path";
import type { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import busboy from "busboy";
import { ensureDirs, NotADirectoryError, needsChown } from "../filesystem/ensure-dirs.js";
import type { FileMetadata, FileMetadataStore } from "../filesystem/file-metadata.js";
import { errnoCode, isNotFound } from "../filesystem/fs-errors.js";
import { expandAndResolve, InvalidPathError } from "../filesystem/resolve-path.js";
import type { LinuxUser } from "../users.js";
import { parseContentEncoding } from "./accept-encoding.js";
import { userForFileRequest } from "./file-user.js";
import { HttpError, type HttpRoute, sendJson } from "./http-route.js";
import { parseMetadataHeaders } from "./metadata-headers.js";
import { headerValue, requireFileAccess } from "./request-auth.js";

/**
 * Bytes buffered per stage of an upload (parser, file stream, disk writes). Under emulation
 * each chunk handed from stage to stage costs far more than its bytes do, so the stages
 * take large ones: the disk writes of 1 MiB gather the socket's 64 KiB reads (writev), and
 * the socket keeps being read while a write is under way. Memory stays a few MiB.
 */
const UPLOAD_BUFFER_BYTES = 1024 * 1024;

/** A request body and the decoders it goes through, piped together only when consumed. */
type BodyStreams = [Readable, ...Transform[]];

/** One written file, as the SDK's WriteInfo reads it. */
interface UploadedEntry {
  path: string;
  name: string;
  type: "file";
  metadata?: FileMetadata;
}

/** Where each written file's metadata goes: the upload's metadata replaces whatever it had. */
interface MetadataTarget {
  store: FileMetadataStore;
  metadata: FileMetadata;
}

function resolveUploadPath(raw: string, user: LinuxUser, defaultWorkdir: string | undefined): string {
  try {
    return expandAndResolve(raw, user, defaultWorkdir);
  } catch (err) {
    if (err instanceof InvalidPathError) throw new HttpError(400, `error resolving path: ${err.message}`);
    throw err;
  }
}

function diskError(err: unknown, what: string): HttpError {
  const code = errnoCode(err);
  // zlib's codes: the client sent a body that is not valid gzip.
  if (code?.startsWith("Z_"))
    return new HttpError(400, `error decompressing request body: ${(err as Error).message}`);
  if (code === "ENOSPC" || code === "EDQUOT")
    return new HttpError(507, "not enough disk space available", { cause: err });
  if (err instanceof HttpError) return err;
  return new HttpError(500, `${what}: ${(err as Error).message}`, { cause: err });
}

/**
 * Writes one upload body to `path` as E2B's envd does: parents created and chowned to the
 * user, an existing directory refused (400), the file truncated and owned by the user
 * before any byte lands. The body is piped with backpressure, so memory stays bounded.
 * Once written, the file's metadata becomes the upload's (none clears what it had).
 */
async function writeFile(
  path: string,
  body: BodyStreams,
  user: LinuxUser,
  meta: MetadataTarget,
): Promise<UploadedEntry> {
  try {
    await ensureDirs(dirname(path), user.uid, user.gid);
  } catch (err) {
    if (err instanceof NotADirectoryError) throw new HttpError(400, err.message);
    throw diskError(err, "error ensuring directories");
  }
  const existing = await stat(path).catch((err: unknown) => {
    if (isNotFound(err)) return undefined;
    throw diskError(err, "error getting file info");
  });
  if (existing?.isDirectory()) throw new HttpError(400, `path is a directory: ${path}`);
  const handle = await open(path, "w", 0o666).catch((err: unknown) => {
    throw diskError(err, "error opening file");
  });
  try {
    if (needsChown(user.uid)) await handle.chown(user.uid, user.gid);
  } catch (err) {
    await handle.close();
    throw diskError(err, "error changing file ownership");
  }
  // The write stream owns the handle from here and closes it when it finishes or fails.
  await pipeline([...body, handle.createWriteStream({ highWaterMark: UPLOAD_BUFFER_BYTES })]).catch(
    (err: unknown) => {
      throw diskError(err, "error writing file");
    },
  );
  await meta.store.replace(path, meta.metadata).catch((err: unknown) => {
    throw new HttpError(500, `error setting file metadata: ${(err as Error).message}`, { cause: err });
  });
  const entry: UploadedEntry = { path, name: basename(path), type: "file" };
  return Object.keys(meta.metadata).length > 0 ? { ...entry, metadata: meta.metadata } : entry;
}

/** application/octet-stream: the body is the file; ?path= is required. */
async function rawUpload(
  body: BodyStreams,
  url: URL,
  user: LinuxUser,
  workdir: string | undefined,
  meta: MetadataTarget,
) {
  const raw = url.searchParams.get("path");
  if (raw === null) throw new HttpError(400, "path query parameter is required for raw body upload");
  return [await writeFile(resolveUploadPath(raw, user, workdir), body, user, meta)];
}

/**
 * multipart/form-data: every part named "file" is written, in order, to ?path= or else to
 * the part's filename (kept whole, directories included, as the SDK's writeFiles sends
 * it). Two parts for one path are refused, naming the files already written.
 */
async function multipartUpload(
  req: IncomingMessage,
  body: BodyStreams,
  url: URL,
  user: LinuxUser,
  workdir: string | undefined,
  meta: MetadataTarget,
): Promise<UploadedEntry[]> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      preservePath: true,
      defParamCharset: "utf8",
      highWaterMark: UPLOAD_BUFFER_BYTES,
      fileHwm: UPLOAD_BUFFER_BYTES,
    });
  } catch (err) {
    throw new HttpError(400, `error parsing multipart form: ${(err as Error).message}`);
  }
  const written: UploadedEntry[] = [];
  const queryPath = url.searchParams.get("path");
  // Parts are handled one at a time: busboy waits for each file stream to be consumed.
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;
  parser.on("file", (field, stream, info) => {
    if (field !== "file" || failure !== undefined) {
      stream.resume();
      return;
    }
    chain = chain.then(async () => {
      if (failure !== undefined) {
        stream.resume();
        return;
      }
      try {
        const raw = queryPath ?? info.filename;
        if (raw === undefined || raw === "")
          throw new HttpError(400, "filename not found in Content-Disposition header");
        const path = resolveUploadPath(raw, user, workdir);
        if (written.some((w) => w.path === path)) {
          const others = written.filter((w) => w.path !== path).map((w) => w.path);
          let message = `you cannot upload multiple files to the same path '${path}' in one upload request, only the first specified file was uploaded`;
          if (others.length > 0) message += `, also the following files were uploaded: ${others.join(", ")}`;
          throw new HttpError(400, message);
        }
        written.push(await writeFile(path, [stream], user, meta));
      } catch (err) {
        failure = err;
        stream.resume();
      }
    });
  });
  try {
    await pipeline([...body, parser]);
  } catch (err) {
    failure ??=
      err instanceof HttpError ? err : new HttpError(400, `error reading form: ${(err as Error).message}`);
  }
  await chain;
  if (failure !== undefined) throw failure;
  return written;
}

/** POST /files: upload one or many files; answers the JSON list the SDK expects. */
export const uploadRoute: HttpRoute = {
  method: "POST",
  path: "/files",
  auth: "route",
  async handle(req, res, url, ctx) {
    requireFileAccess(req, url, ctx.state, "write", Date.now());
    const user = await userForFileRequest(url, ctx.state.defaultUser);
    const meta: MetadataTarget = { store: ctx.fileMetadata, metadata: parseMetadataHeaders(req) };
    const encoding = parseContentEncoding(headerValue(req, "content-encoding"));
    // The decoder joins the same pipeline as the body, so a corrupt stream fails the request cleanly.
    const body: BodyStreams = encoding === "gzip" ? [req, createGunzip()] : [req];
    const contentType = (headerValue(req, "content-type") ?? "").split(";")[0]?.trim().toLowerCase() ?? "";
    const workdir = ctx.state.defaultWorkdir;
    let entries: UploadedEntry[];
    if (contentType === "application/octet-stream") {
      entries = await rawUpload(body, url, user, workdir, meta);
    } else if (contentType.startsWith("multipart/")) {
      entries = await multipartUpload(req, body, url, user, workdir, meta);
    } else {
      throw new HttpError(
        400,
        `unsupported content type: ${headerValue(req, "content-type") ?? ""}, expected multipart/form-data or application/octet-stream`,
      );
    }
    sendJson(res, 200, entries);
  },
};
