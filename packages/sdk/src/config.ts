import { homedir } from "node:os";
import { join } from "node:path";
import { readCredentialsFile } from "./credentials-file.js";
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

/** `$WRENN_DIR/credentials.env`, `WRENN_DIR` defaulting to `~/.wrenn`. */
export function credentialsPath(env: Record<string, string | undefined>): string {
  return join(env.WRENN_DIR || join(homedir(), ".wrenn"), "credentials.env");
}

/**
 * Resolves the connection: explicit options first, then `WRENN_API_URL` / `WRENN_API_KEY`
 * from the environment, then the same names in `$WRENN_DIR/credentials.env` (the file is
 * read only when something is still missing). This is the one place the SDK reads the
 * environment; pass `env` to use another one.
 */
export async function resolveConnection(
  options: ConnectionOptions = {},
  env: Record<string, string | undefined> = process.env,
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
  const file = credentialsPath(env);
  if (!apiUrl || !apiKey) {
    const creds = await readCredentialsFile(file);
    if (!apiUrl && creds.WRENN_API_URL) apiUrl = [creds.WRENN_API_URL, "credentials-file"];
    if (!apiKey && creds.WRENN_API_KEY) apiKey = [creds.WRENN_API_KEY, "credentials-file"];
  }
  if (!apiUrl) {
    throw new WrennConfigError(`no API URL: pass apiUrl, set WRENN_API_URL, or write it to ${file}`);
  }
  if (!apiKey) {
    throw new WrennConfigError(`no API key: pass apiKey, set WRENN_API_KEY, or write it to ${file}`);
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
