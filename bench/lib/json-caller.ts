import { type Dispatcher, fetch as undiciFetch } from "undici";

export type Json = Record<string, unknown>;

/** One JSON call to a control plane at `base`: the status and the parsed body ({} when empty). */
export type JsonCall = (
  base: string,
  method: string,
  path: string,
  body?: unknown,
  auth?: boolean,
) => Promise<{ status: number; body: Json }>;

/** Calls with `key()` as Bearer (unless `auth` is false), through `dispatcher` when given. */
export function jsonCaller(key: () => string, dispatcher?: Dispatcher): JsonCall {
  return async (base, method, path, body, auth = true) => {
    const res = await undiciFetch(`${base}${path}`, {
      ...(dispatcher ? { dispatcher } : {}),
      method,
      headers: {
        ...(auth ? { authorization: `Bearer ${key()}` } : {}),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as Json };
  };
}
