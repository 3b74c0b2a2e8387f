/**
 * The dashboard's one way to the API: same-origin fetch with the session cookie, the CSRF
 * token on state changes, and the API's `{"error":{"code","message"}}` as an ApiError.
 * The browser never holds an API key.
 */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

let csrfToken = "";
const signedOutListeners = new Set<() => void>();

/** Set from the session (`GET /v1/auth/session`, sign-in, sign-up). */
export function setCsrfToken(token: string): void {
  csrfToken = token;
}

/** Called when any request answers 401: the session ended (expired, signed out elsewhere). */
export function onSignedOut(listener: () => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined> | undefined;
  /** A JSON body, or raw bytes sent as application/octet-stream. */
  body?: unknown;
  signal?: AbortSignal | undefined;
}

export function apiUrl(path: string, query?: RequestOptions["query"]): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function toApiError(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  try {
    const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code) return new ApiError(res.status, parsed.error.code, parsed.error.message ?? "");
  } catch {
    // not the API's error shape
  }
  return new ApiError(res.status, `http_${res.status}`, text.slice(0, 300) || res.statusText);
}

/** Sends one request; resolves to the raw Response when it succeeded. */
export async function send(method: Method, path: string, options: RequestOptions = {}): Promise<Response> {
  const headers: Record<string, string> = {};
  let body: BodyInit | undefined;
  if (options.body instanceof Blob || options.body instanceof ArrayBuffer) {
    headers["content-type"] = "application/octet-stream";
    body = options.body;
  } else if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  if (method !== "GET") headers["x-csrf-token"] = csrfToken;
  let res: Response;
  try {
    res = await fetch(apiUrl(path, options.query), {
      method,
      headers,
      body,
      credentials: "same-origin",
      signal: options.signal,
    });
  } catch (err) {
    if ((err as Error).name === "AbortError") throw err;
    throw new ApiError(0, "unavailable", `the control plane did not answer: ${(err as Error).message}`);
  }
  if (!res.ok) {
    const error = await toApiError(res);
    if (res.status === 401) for (const l of signedOutListeners) l();
    throw error;
  }
  return res;
}

/** Sends one request and parses its JSON answer (undefined for 204). */
export async function api<T>(method: Method, path: string, options: RequestOptions = {}): Promise<T> {
  const res = await send(method, path, options);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** `encodeURIComponent` for one path segment. */
export const seg = (s: string): string => encodeURIComponent(s);
