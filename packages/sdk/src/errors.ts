import type { ErrorCode } from "@wrenn/shared";

/** A code from Wrenn's error registry, or one this SDK version does not know yet. */
export type ApiErrorCode = ErrorCode | (string & {});

/** Base of every error this SDK throws, so `catch (e) { if (e instanceof WrennSdkError) … }` works. */
export class WrennSdkError extends Error {
  override readonly name: string = "WrennSdkError";
}

/** The API answered with an error: `code` from the registry, the HTTP status and its message. */
export class WrennApiError extends WrennSdkError {
  override readonly name = "WrennApiError";
  readonly code: ApiErrorCode;
  readonly status: number;
  readonly method: string;
  readonly path: string;

  constructor(input: { code: ApiErrorCode; status: number; message: string; method: string; path: string }) {
    super(input.message);
    this.code = input.code;
    this.status = input.status;
    this.method = input.method;
    this.path = input.path;
  }
}

/** No answer from the API: connection refused, DNS, TLS, reset, or the request timed out. */
export class WrennConnectionError extends WrennSdkError {
  override readonly name = "WrennConnectionError";
  readonly url: string;
  readonly timedOut: boolean;

  constructor(input: { url: string; timedOut: boolean; message: string; cause?: unknown }) {
    super(input.message, { cause: input.cause });
    this.url = input.url;
    this.timedOut = input.timedOut;
  }
}

/** The client cannot be configured: no API URL or key found, or a malformed one. */
export class WrennConfigError extends WrennSdkError {
  override readonly name = "WrennConfigError";
}

/** Fallback code for error answers that do not carry Wrenn's body (a proxy's 502, say). */
export function codeForStatus(status: number): ErrorCode {
  if (status === 400 || status === 422) return "invalid_argument";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "permission_denied";
  if (status === 404) return "not_found";
  if (status === 409) return "conflict";
  if (status === 412) return "failed_precondition";
  if (status === 413) return "payload_too_large";
  if (status === 429) return "resource_exhausted";
  if (status === 501) return "not_implemented";
  if (status === 502 || status === 503) return "unavailable";
  if (status === 504) return "deadline_exceeded";
  return "internal";
}

/** Builds the error for a non-2xx answer from its status and body text. */
export function apiErrorFromResponse(input: {
  status: number;
  statusText: string;
  bodyText: string;
  method: string;
  path: string;
}): WrennApiError {
  let code: ApiErrorCode = codeForStatus(input.status);
  let message = input.bodyText.trim().slice(0, 500) || input.statusText || `HTTP ${input.status}`;
  try {
    const body = JSON.parse(input.bodyText) as { error?: { code?: unknown; message?: unknown } };
    if (body?.error && typeof body.error.code === "string") {
      code = body.error.code;
      if (typeof body.error.message === "string") message = body.error.message;
    }
  } catch {
    // not JSON: keep the status-derived code and the raw text
  }
  return new WrennApiError({ code, status: input.status, message, method: input.method, path: input.path });
}

/** True when `err` is a WrennApiError, optionally with the given code. */
export function isWrennApiError(err: unknown, code?: ApiErrorCode): err is WrennApiError {
  return err instanceof WrennApiError && (code === undefined || err.code === code);
}
