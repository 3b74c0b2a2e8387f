import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { ACCESS_TOKEN_HEADER, isAccessTokenValid } from "../auth.js";
import type { EnvdState } from "../state.js";
import { HttpError } from "./http-route.js";

export type SigningOperation = "read" | "write";

export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** The general check every protected route gets (E2B answers this message with 401). */
export function requireAccessToken(req: IncomingMessage, state: EnvdState): void {
  if (!isAccessTokenValid(state, headerValue(req, ACCESS_TOKEN_HEADER))) {
    throw new HttpError(
      401,
      "unauthorized access, please provide a valid access token or method signing if supported",
    );
  }
}

/**
 * The signature the SDK puts on upload/download URLs: "v1_" + unpadded base64 of
 * sha256("path:operation:username:token[:expiration]"), where path and username are the
 * query parameters exactly as sent (username "" when absent).
 */
export function fileSignature(
  path: string,
  operation: SigningOperation,
  username: string,
  token: string,
  expiration: string | undefined,
): string {
  const parts = [path, operation, username, token];
  if (expiration !== undefined) parts.push(expiration);
  return `v1_${createHash("sha256").update(parts.join(":")).digest("base64").replace(/=+$/, "")}`;
}

/**
 * /files authorisation when a token is set: a matching X-Access-Token, or else a valid,
 * unexpired signature in the query. Messages follow E2B's envd.
 */
export function requireFileAccess(
  req: IncomingMessage,
  url: URL,
  state: EnvdState,
  operation: SigningOperation,
  nowMs: number,
): void {
  const token = state.accessToken;
  if (token === undefined || token === "") return;
  const fromHeader = headerValue(req, ACCESS_TOKEN_HEADER);
  if (fromHeader !== undefined && fromHeader !== "") {
    if (!isAccessTokenValid(state, fromHeader))
      throw new HttpError(401, "access token present in header but does not match");
    return;
  }
  const signature = url.searchParams.get("signature");
  if (signature === null) throw new HttpError(401, "missing signature query parameter");
  const expirationRaw = url.searchParams.get("signature_expiration") ?? undefined;
  let expiration: number | undefined;
  if (expirationRaw !== undefined) {
    expiration = Number(expirationRaw);
    if (!Number.isSafeInteger(expiration))
      throw new HttpError(400, "invalid signature_expiration query parameter");
  }
  const expected = fileSignature(
    url.searchParams.get("path") ?? "",
    operation,
    url.searchParams.get("username") ?? "",
    token,
    expiration === undefined ? undefined : String(expiration),
  );
  const a = Buffer.from(expected);
  const b = Buffer.from(signature);
  if (a.length !== b.length || !timingSafeEqual(a, b)) throw new HttpError(401, "invalid signature");
  if (expiration !== undefined && expiration < Math.floor(nowMs / 1000)) {
    throw new HttpError(401, "signature is already expired");
  }
}
