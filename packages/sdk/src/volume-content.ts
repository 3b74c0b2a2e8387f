import type { VolumeEntryView, VolumeMetadataBody } from "@wrenn/api";
import { parseHttpError, WRENN_ERROR_CODE_HEADER } from "@wrenn/shared/errors";
import { sendHttp } from "./api-client.js";
import { isWrennApiError, WrennApiError } from "./errors.js";
import { type FileData, uploadBody } from "./files.js";

/** One entry of a volume (a file, directory or symbolic link, never followed). */
export interface VolumeEntry {
  name: string;
  type: VolumeEntryView["type"];
  /** Absolute within the volume (`/` is its root). */
  path: string;
  size: number;
  /** Permission bits (`0o644`). */
  mode: number;
  uid: number;
  gid: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
  /** A symbolic link's target, as stored. */
  target?: string;
}

function entryFromWire(w: VolumeEntryView): VolumeEntry {
  return {
    name: w.name,
    type: w.type,
    path: w.path,
    size: w.size,
    mode: w.mode,
    uid: w.uid,
    gid: w.gid,
    atime: new Date(w.atime),
    mtime: new Date(w.mtime),
    ctime: new Date(w.ctime),
    ...(w.target !== undefined ? { target: w.target } : {}),
  };
}

/** Owner and permission bits of a new or changed entry (default: the parent directory's owner). */
export interface VolumeOwnerOptions {
  uid?: number;
  gid?: number;
  mode?: number;
}

export interface VolumeRequestOptions {
  /** Overrides the per-request timeout; 0 means none (for big files). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface VolumeWriteOptions extends VolumeOwnerOptions, VolumeRequestOptions {
  /** Overwrite an existing file (without it, an existing path is `already_exists`). */
  force?: boolean;
}

export interface VolumeMakeDirOptions extends VolumeOwnerOptions, VolumeRequestOptions {
  /** Make missing parents too, and accept a directory that already exists. */
  force?: boolean;
}

/** Where a volume's content API is and the token that opens it. */
export interface VolumeContentAccess {
  apiUrl: string;
  volumeId: string;
  /** The volume's content token (`Volumes.get` returns it), not an API key. */
  token: string;
  timeoutMs: number;
}

type Kind = "path" | "dir" | "file";
type Query = Record<string, string | number | undefined>;
type FetchOptions = VolumeRequestOptions & { body?: RequestInit["body"]; json?: unknown };

/**
 * The files of one volume, over the content API (`/volumecontent/{id}/path|dir|file`), with
 * the volume's own token: no sandbox needs to run. Files move as streams in both directions.
 */
export class VolumeContent {
  readonly #access: VolumeContentAccess;

  constructor(access: VolumeContentAccess) {
    this.#access = access;
  }

  async #fetch(method: string, kind: Kind, query: Query, options: FetchOptions = {}): Promise<Response> {
    const { apiUrl, volumeId, token } = this.#access;
    const url = new URL(`${apiUrl}/volumecontent/${encodeURIComponent(volumeId)}/${kind}`);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    const res = await sendHttp(url, {
      method,
      headers: { authorization: `Bearer ${token}` },
      json: options.json,
      body: options.body,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.#access.timeoutMs,
    });
    if (!res.ok) throw await contentError(res, method, url);
    return res;
  }

  async #json<T>(method: string, kind: Kind, query: Query, options: FetchOptions = {}): Promise<T> {
    return (await (await this.#fetch(method, kind, query, options)).json()) as T;
  }

  /** Reads a file as text (default), bytes, or a stream of bytes. */
  readFile(path: string, options?: VolumeRequestOptions & { format?: "text" }): Promise<string>;
  readFile(path: string, options: VolumeRequestOptions & { format: "bytes" }): Promise<Uint8Array>;
  readFile(
    path: string,
    options: VolumeRequestOptions & { format: "stream" },
  ): Promise<ReadableStream<Uint8Array>>;
  async readFile(
    path: string,
    options: VolumeRequestOptions & { format?: "text" | "bytes" | "stream" } = {},
  ): Promise<string | Uint8Array | ReadableStream<Uint8Array>> {
    const res = await this.#fetch("GET", "file", { path }, options);
    if (options.format === "stream") return (res.body ?? new Blob([]).stream()) as ReadableStream<Uint8Array>;
    if (options.format === "bytes") return new Uint8Array(await res.arrayBuffer());
    return res.text();
  }

  /**
   * Writes a file, streaming the data; it appears whole or not at all. The parent directory
   * must exist (`makeDir` with `force` makes a tree); an existing file needs `force`.
   */
  async writeFile(path: string, data: FileData, options: VolumeWriteOptions = {}): Promise<VolumeEntry> {
    const body = uploadBody(data);
    return entryFromWire(
      await this.#json<VolumeEntryView>("PUT", "file", createQuery(path, options), {
        ...options,
        body: body as RequestInit["body"],
      }),
    );
  }

  /** A directory's entries, descending `depth` levels (default 1). */
  async list(path: string, options: VolumeRequestOptions & { depth?: number } = {}): Promise<VolumeEntry[]> {
    const items = await this.#json<VolumeEntryView[]>("GET", "dir", { path, depth: options.depth }, options);
    return items.map(entryFromWire);
  }

  /** Makes a directory; `force` makes its parents too and accepts one that exists. */
  async makeDir(path: string, options: VolumeMakeDirOptions = {}): Promise<VolumeEntry> {
    return entryFromWire(
      await this.#json<VolumeEntryView>("POST", "dir", createQuery(path, options), options),
    );
  }

  /** An entry's type, size, owner, mode and times (`not_found` when missing). */
  async stat(path: string, options: VolumeRequestOptions = {}): Promise<VolumeEntry> {
    return entryFromWire(await this.#json<VolumeEntryView>("GET", "path", { path }, options));
  }

  async exists(path: string, options: VolumeRequestOptions = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (err) {
      if (isWrennApiError(err, "not_found")) return false;
      throw err;
    }
  }

  /** Changes an entry's owner or permission bits. */
  async updateMetadata(
    path: string,
    metadata: VolumeOwnerOptions,
    options: VolumeRequestOptions = {},
  ): Promise<VolumeEntry> {
    const json: VolumeMetadataBody = { uid: metadata.uid, gid: metadata.gid, mode: metadata.mode };
    return entryFromWire(await this.#json<VolumeEntryView>("PATCH", "path", { path }, { ...options, json }));
  }

  /** Removes a file, a link, or a directory with everything in it. */
  async remove(path: string, options: VolumeRequestOptions = {}): Promise<void> {
    await this.#fetch("DELETE", "path", { path }, options);
  }
}

function createQuery(path: string, options: VolumeWriteOptions) {
  return {
    path,
    uid: options.uid,
    gid: options.gid,
    mode: options.mode,
    force: options.force === undefined ? undefined : String(options.force),
  };
}

/**
 * The content API answers errors as `{code, message}` with the registry code in a header
 * (from the agent), or with the e2b-style body (`code` the status) from the control plane.
 */
async function contentError(res: Response, method: string, url: URL): Promise<WrennApiError> {
  const bodyText = await res.text().catch(() => "");
  const parsed = parseHttpError({ status: res.status, statusText: res.statusText, bodyText });
  let message = parsed.message;
  try {
    const body = JSON.parse(bodyText) as { message?: unknown };
    if (typeof body?.message === "string") message = body.message;
  } catch {
    // not JSON: the raw text stands
  }
  return new WrennApiError({
    code: res.headers.get(WRENN_ERROR_CODE_HEADER) ?? parsed.code,
    status: res.status,
    message,
    method,
    path: url.pathname,
  });
}
