import type { ExecStartMessage, PtyStartMessage } from "@wrenn/api";
import { type ConnectionOptions, type ResolvedConnection, resolveConnection } from "./config.js";
import { apiErrorFromResponse, WrennConnectionError } from "./errors.js";
import { StreamSocket } from "./stream-socket.js";

export type QueryValue = string | number | boolean | undefined;

export interface RequestOptions {
  query?: Record<string, QueryValue>;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as is (bytes or a stream), with `content-type: application/octet-stream`. */
  body?: Uint8Array | ReadableStream<Uint8Array> | Blob | string;
  /** Overrides the client's per-request timeout; 0 means none. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const SDK_USER_AGENT = "wrenn-sdk-js/0.1.0";

/** One HTTP request of the SDK: a JSON or octet-stream body, a time limit, connection errors mapped. */
export async function sendHttp(
  url: URL,
  request: {
    method: string;
    headers: Record<string, string>;
    json?: unknown;
    body?: RequestInit["body"] | undefined;
    signal?: AbortSignal | undefined;
    timeoutMs: number;
  },
): Promise<Response> {
  const { method, timeoutMs } = request;
  const headers: Record<string, string> = { ...request.headers, "user-agent": SDK_USER_AGENT };
  let body: RequestInit["body"];
  if (request.json !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(request.json);
  } else if (request.body !== undefined) {
    headers["content-type"] = "application/octet-stream";
    body = request.body;
  }
  const signals = [request.signal, timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined].filter(
    (s): s is AbortSignal => s !== undefined,
  );
  try {
    return await fetch(url, {
      method,
      headers,
      body,
      signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
      // Node's fetch needs this to send a stream as the request body.
      ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
    } as RequestInit);
  } catch (err) {
    throw connectionError(err, method, url, timeoutMs);
  }
}

/**
 * The HTTP layer: auth header, timeouts, and error mapping (non-2xx → WrennApiError,
 * no answer → WrennConnectionError). Everything else in the SDK goes through it.
 */
export class ApiClient {
  readonly apiUrl: string;
  readonly timeoutMs: number;
  readonly #apiKey: string;

  constructor(connection: Pick<ResolvedConnection, "apiUrl" | "apiKey" | "timeoutMs">) {
    this.apiUrl = connection.apiUrl;
    this.#apiKey = connection.apiKey;
    this.timeoutMs = connection.timeoutMs;
  }

  /** Resolves options and the environment into a client (see `resolveConnection`; the credentials file: `@wrenn/sdk/node`). */
  static async create(options: ConnectionOptions | ApiClient = {}): Promise<ApiClient> {
    if (options instanceof ApiClient) return options;
    return new ApiClient(await resolveConnection(options));
  }

  /** The raw response of a successful request (2xx); throws the mapped error otherwise. */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const url = new URL(`${this.apiUrl}${path}`);
    for (const [k, v] of Object.entries(options.query ?? {})) {
      if (v !== undefined) url.searchParams.set(k, String(v));
    }
    const res = await sendHttp(url, {
      method,
      headers: { authorization: `Bearer ${this.#apiKey}` },
      json: options.json,
      body: options.body as RequestInit["body"],
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.timeoutMs,
    });
    if (!res.ok) {
      const bodyText = await res.text().catch(() => "");
      throw apiErrorFromResponse({
        status: res.status,
        statusText: res.statusText,
        bodyText,
        method,
        path: url.pathname,
      });
    }
    return res;
  }

  /** Opens one of the WebSocket stream endpoints (`…/exec/ws`, `…/pty/ws`). */
  openStream(
    path: string,
    start: ExecStartMessage | PtyStartMessage,
    onMessage: (msg: unknown) => void,
  ): Promise<StreamSocket> {
    const url = `${this.apiUrl.replace(/^http/, "ws")}${path}`;
    return StreamSocket.open({ url, path, apiKey: this.#apiKey, start, onMessage });
  }

  /** A JSON request; resolves to the parsed body, or undefined for 204. */
  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(method, path, options);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }
}

/** A failed `fetch` (no answer) as a WrennConnectionError: timed out, aborted, or unreachable. */
function connectionError(err: unknown, method: string, url: URL, timeoutMs: number): WrennConnectionError {
  const name = (err as { name?: string })?.name;
  if (name === "TimeoutError") {
    return new WrennConnectionError({
      url: url.toString(),
      timedOut: true,
      message: `${method} ${url.pathname} timed out after ${timeoutMs} ms`,
      cause: err,
    });
  }
  if (name === "AbortError") {
    return new WrennConnectionError({
      url: url.toString(),
      timedOut: false,
      message: `${method} ${url.pathname} was aborted`,
      cause: err,
    });
  }
  // undici reports the reason (ECONNREFUSED, ENOTFOUND, …) in `cause`.
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const reason = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new WrennConnectionError({
    url: url.toString(),
    timedOut: false,
    message: `cannot reach the Wrenn API at ${url.origin}: ${reason}`,
    cause: err,
  });
}

/** `/v1/sandboxes/<id>` with each segment encoded. */
export function apiPath(...segments: string[]): string {
  return `/v1/${segments.map(encodeURIComponent).join("/")}`;
}
