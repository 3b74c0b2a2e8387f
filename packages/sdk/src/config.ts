import { WrennConfigError } from "./errors.js";

/** How to reach the API. Every field is optional; see `resolveConnection` for the defaults. */
export interface ConnectionOptions {
  /** Base URL of the control plane, e.g. `http://127.0.0.1:8080`. Env `WRENN_API_URL`. */
  apiUrl?: string;
  /** `wrn_…` API key. Env `WRENN_API_KEY`. */
  apiKey?: string;
  /** Per-request timeout in milliseconds (default 120 000; 0 means none). */
  timeoutMs?: number;
}

export interface ResolvedConnection {
  apiUrl: string;
  apiKey: string;
  timeoutMs: number;
  /** Where each value came from, for `wrenn doctor` and error hints. */
  source: { apiUrl: ConfigSource; apiKey: ConfigSource };
}

export type ConfigSource = "options" | "env" | "credentials-file";

export const DEFAULT_REQUEST_TIMEOUT_MS = 120_000;

/**
 * A last source of `WRENN_API_URL` / `WRENN_API_KEY`, read only when options and the
 * environment leave one unset. `@wrenn/sdk/node` passes the credentials file.
 */
export interface ConfigFallback {
  source: ConfigSource;
  /** Where it looks, for error messages ("write it to …"). */
  where: string;
  read(): Promise<Record<string, string | undefined>>;
}

let defaultFallback: ConfigFallback | undefined;

/**
 * The fallback every resolution without one of its own uses. Set once by the Node entry
 * (`src/index.node.ts`, what `@wrenn/sdk` resolves to under Node) to the credentials file,
 * so `Sandbox.create()` finds what `wrenn up` wrote, as it always has; browsers have none.
 */
export function setDefaultConfigFallback(fallback: ConfigFallback | undefined): void {
  defaultFallback = fallback;
}

/** The process environment where there is one (Node, Deno, Bun), else nothing (browsers). */
export function platformEnv(): Record<string, string | undefined> {
  return (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env ?? {};
}

/**
 * Resolves the connection: explicit options first, then `WRENN_API_URL` / `WRENN_API_KEY`
 * from `env` (the process environment where there is one), then `fallback`. This and the
 * Node entry's wrapper are the only places the SDK reads the environment.
 */
export async function resolveConnection(
  options: ConnectionOptions = {},
  env: Record<string, string | undefined> = platformEnv(),
  fallback: ConfigFallback | undefined = defaultFallback,
): Promise<ResolvedConnection> {
  let apiUrl: [string, ConfigSource] | undefined = options.apiUrl
    ? [options.apiUrl, "options"]
    : env.WRENN_API_URL
      ? [env.WRENN_API_URL, "env"]
      : undefined;
  let apiKey: [string, ConfigSource] | undefined = options.apiKey
    ? [options.apiKey, "options"]
    : env.WRENN_API_KEY
      ? [env.WRENN_API_KEY, "env"]
      : undefined;
  if (fallback && (!apiUrl || !apiKey)) {
    const values = await fallback.read();
    if (!apiUrl && values.WRENN_API_URL) apiUrl = [values.WRENN_API_URL, fallback.source];
    if (!apiKey && values.WRENN_API_KEY) apiKey = [values.WRENN_API_KEY, fallback.source];
  }
  const orWhere = fallback ? `, or write it to ${fallback.where}` : "";
  if (!apiUrl) {
    throw new WrennConfigError(
      `no API URL: pass apiUrl${fallback ? "," : " or"} set WRENN_API_URL${orWhere}`,
    );
  }
  if (!apiKey) {
    throw new WrennConfigError(
      `no API key: pass apiKey${fallback ? "," : " or"} set WRENN_API_KEY${orWhere}`,
    );
  }
  let url: URL;
  try {
    url = new URL(apiUrl[0]);
  } catch {
    throw new WrennConfigError(`API URL ${JSON.stringify(apiUrl[0])} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new WrennConfigError(`API URL ${apiUrl[0]} must be http or https`);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 0) {
    throw new WrennConfigError(`timeoutMs must be a non-negative number, got ${timeoutMs}`);
  }
  return {
    apiUrl: url.toString().replace(/\/+$/, ""),
    apiKey: apiKey[0],
    timeoutMs,
    source: { apiUrl: apiUrl[1], apiKey: apiKey[1] },
  };
}
