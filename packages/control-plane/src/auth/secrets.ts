import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** Secrets the control plane hands out once and stores only as sha256. */
export type SecretKind =
  | "api_key"
  | "host_credential"
  | "host_refresh"
  | "registration_token"
  | "session"
  | "invitation";

const PREFIX: Record<SecretKind, string> = {
  api_key: "wrn_",
  host_credential: "wrnh_",
  host_refresh: "wrnf_",
  registration_token: "wrnr_",
  session: "wrns_",
  invitation: "wrni_",
};

/** API keys may also be presented as `e2b_<hex>`: the same secret in the E2B SDK's spelling. */
const API_KEY_ALIASES = ["wrn_", "e2b_"];
const BODY_RE = /^[0-9a-f]{40}$/;

export interface IssuedSecret {
  /** The whole secret, shown to its owner once. */
  value: string;
  /** sha256 of the secret's body, what is stored. */
  hash: string;
  /** The first characters, stored for display. */
  prefix: string;
}

export function hashSecretBody(body: string): string {
  return createHash("sha256").update(body).digest("hex");
}

export function issueSecret(kind: SecretKind, body = randomBytes(20).toString("hex")): IssuedSecret {
  const value = `${PREFIX[kind]}${body}`;
  return { value, hash: hashSecretBody(body), prefix: value.slice(0, PREFIX[kind].length + 8) };
}

/** The stored hash a presented secret would have, or null when it is not of that kind's shape. */
export function hashPresentedSecret(kind: SecretKind, presented: string): string | null {
  const prefixes = kind === "api_key" ? API_KEY_ALIASES : [PREFIX[kind]];
  const prefix = prefixes.find((p) => presented.startsWith(p));
  if (!prefix) return null;
  const body = presented.slice(prefix.length);
  return BODY_RE.test(body) ? hashSecretBody(body) : null;
}

/** The E2B spelling of an API key (same secret, `e2b_` prefix). */
export function e2bFormOfApiKey(key: string): string {
  return `e2b_${key.slice(key.indexOf("_") + 1)}`;
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
