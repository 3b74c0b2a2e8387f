/**
 * `@wrenn/sdk/node`: what only Node (or another runtime with a file system) can do. The main
 * entry `@wrenn/sdk` stays browser-safe; this one adds the credentials file that `wrenn up`
 * writes, `$WRENN_DIR/credentials.env` (default `~/.wrenn/credentials.env`).
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { ApiClient } from "./api-client.js";
import {
  type ConfigFallback,
  type ConnectionOptions,
  type ResolvedConnection,
  resolveConnection as resolveFrom,
} from "./config.js";
import { readCredentialsFile } from "./credentials-file.js";

export { copySourcePath, packCopySource } from "./copy-archive.js";
export { parseCredentials, readCredentialsFile } from "./credentials-file.js";

/** `$WRENN_DIR/credentials.env`, `WRENN_DIR` defaulting to `~/.wrenn`. */
export function credentialsPath(env: Record<string, string | undefined>): string {
  return join(env.WRENN_DIR || join(homedir(), ".wrenn"), "credentials.env");
}

/**
 * Resolves the connection: explicit options first, then `WRENN_API_URL` / `WRENN_API_KEY`
 * from `env`, then the same names in the credentials file (read only when something is
 * still missing).
 */
export function resolveConnection(
  options: ConnectionOptions = {},
  env: Record<string, string | undefined> = process.env,
): Promise<ResolvedConnection> {
  return resolveFrom(options, env, credentialsFallback(env));
}

/** The credentials file as a fallback source of `WRENN_API_URL` / `WRENN_API_KEY`. */
export function credentialsFallback(env: Record<string, string | undefined> = process.env): ConfigFallback {
  const file = credentialsPath(env);
  return { source: "credentials-file", where: file, read: () => readCredentialsFile(file) };
}

/** A client resolved as `resolveConnection` does; pass it as `client` to `Sandbox`, `Snapshot`, `ApiKeys`. */
export async function createApiClient(
  options: ConnectionOptions = {},
  env: Record<string, string | undefined> = process.env,
): Promise<ApiClient> {
  return new ApiClient(await resolveConnection(options, env));
}
