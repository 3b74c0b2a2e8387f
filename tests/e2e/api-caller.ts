/** One REST call to a control plane with a key: the status and the parsed JSON body (null when empty). */
export type ApiCaller = <T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
) => Promise<{ status: number; body: T }>;

/** Calls `url()` (read per call: a restarted control plane may move) with `key()` as Bearer. */
export function apiCaller(url: () => string, key: () => string): ApiCaller {
  return async (method, path, body) => {
    const res = await fetch(`${url()}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${key()}`,
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as never };
  };
}
