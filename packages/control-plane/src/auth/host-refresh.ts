import { createHmac, randomBytes } from "node:crypto";
import { type IssuedSecret, issueSecret } from "./secrets.js";

/**
 * Rotating refresh tokens for enrolled agents. Each refresh spends the presented token and
 * issues the next pair (access credential + refresh token), derived from the spent token by
 * HMAC under a random key the control plane keeps with that token's row (never sent): presenting
 * the spent token again while its successor is untouched yields the very same pair, so an agent
 * that crashed before keeping its new pair recovers, while a copy of a refresh token alone
 * never yields the pairs after it. Of the secrets themselves only hashes are stored.
 */

export interface HostCredentialPair {
  credential: IssuedSecret;
  refreshToken: IssuedSecret;
}

function derive(key: string, spentRefreshToken: string, label: string): string {
  return createHmac("sha256", key).update(`${label}\0${spentRefreshToken}`).digest("hex").slice(0, 40);
}

/** A new derive key, stored with a refresh token's row when the token is issued. */
export function newDeriveKey(): string {
  return randomBytes(32).toString("hex");
}

/**
 * The pair a refresh with `spentRefreshToken` issues, under `key` (the derive key stored with
 * that token): always the same for the same token.
 */
export function derivePairFrom(key: string, spentRefreshToken: string): HostCredentialPair {
  return {
    credential: issueSecret("host_credential", derive(key, spentRefreshToken, "wrenn host credential")),
    refreshToken: issueSecret("host_refresh", derive(key, spentRefreshToken, "wrenn host refresh token")),
  };
}

/** A fresh pair, at enrolment. */
export function newPair(): HostCredentialPair {
  return { credential: issueSecret("host_credential"), refreshToken: issueSecret("host_refresh") };
}

/** What the control plane knows about a presented refresh token. */
export interface RefreshFacts {
  /** The token's row: unknown tokens have none. */
  presented: { used: boolean } | undefined;
  /** The token its use issued, if it was used. */
  successor: { used: boolean } | undefined;
  /** Whether the access credential issued with the successor has been presented. */
  successorCredentialUsed: boolean;
  hostRevoked: boolean;
}

export type RefreshDecision =
  /** Not a refresh token this control plane issued. */
  | "unknown"
  /** The host is revoked already. */
  | "revoked"
  /** The current token: spend it, issue the next pair. */
  | "rotate"
  /** The previous token, its successor pair never used: answer that pair again. */
  | "replay"
  /** Any other reuse of a spent token: someone else holds a copy; revoke the host. */
  | "reuse";

export function decideRefresh(facts: RefreshFacts): RefreshDecision {
  if (!facts.presented) return "unknown";
  if (facts.hostRevoked) return "revoked";
  if (!facts.presented.used) return "rotate";
  if (facts.successor && !facts.successor.used && !facts.successorCredentialUsed) return "replay";
  return "reuse";
}
