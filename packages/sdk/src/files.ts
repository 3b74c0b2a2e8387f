import type { DirCreatedView, EntryView, FileWrittenView, MakeDirBody } from "@wrenn/api";
import { type ApiClient, apiPath } from "./api-client.js";
import { type EntryInfo, entryInfoFromWire } from "./api-types.js";

export interface FileOptions {
  /** The user whose permissions apply (default: the sandbox's default user). */
  user?: string;
  /** Overrides the client's per-request timeout; 0 means none. */
  timeoutMs?: number;
}

export type FileData = string | Uint8Array | ArrayBuffer | Blob | ReadableStream<Uint8Array>;

/** File data as a request body (text as UTF-8). */
export function uploadBody(data: FileData): Exclude<FileData, string | ArrayBuffer> {
  if (typeof data === "string") return new TextEncoder().encode(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** A written file: its path and size in bytes. */
export type WriteInfo = FileWrittenView;

/** Files in one sandbox, moved over HTTP as streams. */
export class Files {
  readonly #api: ApiClient;
  readonly #sandboxId: string;

  constructor(api: ApiClient, sandboxId: string) {
    this.#api = api;
    this.#sandboxId = sandboxId;
  }

  #path(...rest: string[]): string {
    return apiPath("sandboxes", this.#sandboxId, "files", ...rest);
  }

  /** Reads a file as text (default), bytes, or a stream of bytes. */
  read(path: string, options?: FileOptions & { format?: "text" }): Promise<string>;
  read(path: string, options: FileOptions & { format: "bytes" }): Promise<Uint8Array>;
  read(path: string, options: FileOptions & { format: "stream" }): Promise<ReadableStream<Uint8Array>>;
  async read(
    path: string,
    options: FileOptions & { format?: "text" | "bytes" | "stream" } = {},
  ): Promise<string | Uint8Array | ReadableStream<Uint8Array>> {
    const res = await this.#api.fetch("GET", this.#path(), {
      query: { path, user: options.user },
      timeoutMs: options.timeoutMs,
    });
    if (options.format === "stream") {
      if (!res.body) return new Blob([]).stream();
      return res.body as ReadableStream<Uint8Array>;
    }
    if (options.format === "bytes") return new Uint8Array(await res.arrayBuffer());
    return res.text();
  }

  /** Writes a file (creating parent directories), streaming the data; returns its path and size. */
  async write(path: string, data: FileData, options: FileOptions = {}): Promise<WriteInfo> {
    const body = uploadBody(data);
    return this.#api.json<WriteInfo>("PUT", this.#path(), {
      query: { path, user: options.user },
      body,
      timeoutMs: options.timeoutMs,
    });
  }

  /** Lists a directory (`depth` > 1 descends). */
  async list(path: string, options: FileOptions & { depth?: number } = {}): Promise<EntryInfo[]> {
    const res = await this.#api.json<{ items: EntryView[] }>("GET", this.#path("list"), {
      query: { path, user: options.user, depth: options.depth },
      timeoutMs: options.timeoutMs,
    });
    return res.items.map(entryInfoFromWire);
  }

  /** Makes a directory and its parents; false when it already existed. */
  async makeDir(path: string, options: FileOptions = {}): Promise<boolean> {
    const res = await this.#api.json<DirCreatedView>("POST", this.#path("mkdir"), {
      json: { path, user: options.user } satisfies MakeDirBody,
      timeoutMs: options.timeoutMs,
    });
    return res.created;
  }

  /** Removes a file or a directory with its contents. */
  async remove(path: string, options: FileOptions = {}): Promise<void> {
    await this.#api.json("DELETE", this.#path(), {
      query: { path, user: options.user },
      timeoutMs: options.timeoutMs,
    });
  }
}
