/** The stock e2b SDK's settings, which it reads from the environment. */
const E2B_ENV = [
  "E2B_API_URL",
  "E2B_SANDBOX_URL",
  "E2B_API_KEY",
  "E2B_DOMAIN",
  "E2B_VOLUME_API_URL",
] as const;

/**
 * Points the stock e2b SDK at a Wrenn control plane: its API, sandbox traffic and (with
 * `volumes`) volume API at `url`, with `apiKey`; `domain` sets E2B_DOMAIN (unset: sandbox
 * traffic goes by header to E2B_SANDBOX_URL). Returns what puts the environment back.
 */
export function pointE2bSdkAt(
  url: string,
  apiKey: string,
  options: { domain?: string; volumes?: boolean } = {},
): () => void {
  const saved = new Map(E2B_ENV.map((name) => [name, process.env[name]]));
  const set = (name: (typeof E2B_ENV)[number], value: string | undefined) => {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  };
  set("E2B_API_URL", url);
  set("E2B_SANDBOX_URL", url);
  set("E2B_API_KEY", apiKey);
  set("E2B_DOMAIN", options.domain);
  set("E2B_VOLUME_API_URL", options.volumes ? url : undefined);
  return () => {
    for (const [name, value] of saved) set(name, value);
  };
}
