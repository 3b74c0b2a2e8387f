import { timingSafeEqual } from "node:crypto";
import type { EnvdState } from "./state.js";

export const ACCESS_TOKEN_HEADER = "x-access-token";

/** True when no token is set, or the presented one matches it. */
export function isAccessTokenValid(state: EnvdState, presented: string | null | undefined): boolean {
  const expected = state.accessToken;
  if (expected === undefined || expected === "") return true;
  if (!presented) return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
