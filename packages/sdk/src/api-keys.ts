import type { ApiKeyCreateBody, ApiKeyView, CreatedApiKeyView } from "@wrenn/api";
import { ApiClient, apiPath } from "./api-client.js";
import { type ApiKeyInfo, apiKeyInfoFromWire } from "./api-types.js";
import type { ClientOptions } from "./sandbox.js";

async function createApiKey(
  name: string,
  options: ClientOptions = {},
): Promise<ApiKeyInfo & { key: string }> {
  const api = options.client ?? (await ApiClient.create(options));
  const wire = await api.json<CreatedApiKeyView>("POST", "/v1/api-keys", {
    json: { name } satisfies ApiKeyCreateBody,
  });
  return { ...apiKeyInfoFromWire(wire), key: wire.key };
}

async function listApiKeys(options: ClientOptions = {}): Promise<ApiKeyInfo[]> {
  const api = options.client ?? (await ApiClient.create(options));
  return (await api.json<{ items: ApiKeyView[] }>("GET", "/v1/api-keys")).items.map(apiKeyInfoFromWire);
}

async function revokeApiKey(id: string, options: ClientOptions = {}): Promise<void> {
  const api = options.client ?? (await ApiClient.create(options));
  await api.json("DELETE", apiPath("api-keys", id));
}

/** The team's API keys. A key's secret is returned once, by `create`. */
export const ApiKeys = { create: createApiKey, list: listApiKeys, revoke: revokeApiKey } as const;
