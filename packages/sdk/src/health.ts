import type { HealthView } from "@wrenn/api";
import { apiErrorFromResponse, WrennConnectionError } from "./errors.js";

/** `GET /health`'s answer (`@wrenn/api`'s HealthSchema). */
export type ApiHealth = HealthView;

/** `GET /health` (no key needed): whether the API answers, its version and hosts. */
export async function getHealth(apiUrl: string, options: { timeoutMs?: number } = {}): Promise<ApiHealth> {
  const url = `${apiUrl.replace(/\/+$/, "")}/health`;
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 5000) });
  } catch (err) {
    const timedOut = (err as { name?: string }).name === "TimeoutError";
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new WrennConnectionError({
      url,
      timedOut,
      message: timedOut
        ? `GET ${url} timed out`
        : `cannot reach ${url}: ${cause?.code ?? (err as Error).message}`,
      cause: err,
    });
  }
  if (!res.ok) {
    throw apiErrorFromResponse({
      status: res.status,
      statusText: res.statusText,
      bodyText: await res.text(),
      method: "GET",
      path: "/health",
    });
  }
  return (await res.json()) as ApiHealth;
}
