import { type ErrorCode, parseHttpError } from "@wrenn/shared/errors";
import type { BuildInfo } from "./template-types.js";

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

/** Builds the error for a non-2xx answer from its status and body text (`@wrenn/shared`'s reading of error bodies). */
export function apiErrorFromResponse(input: {
  status: number;
  statusText: string;
  bodyText: string;
  method: string;
  path: string;
}): WrennApiError {
  const { code, message } = parseHttpError(input);
  return new WrennApiError({ code, status: input.status, message, method: input.method, path: input.path });
}

/** True when `err` is a WrennApiError, optionally with the given code. */
export function isWrennApiError(err: unknown, code?: ApiErrorCode): err is WrennApiError {
  return err instanceof WrennApiError && (code === undefined || err.code === code);
}

/** A template build ended in error: `build.error` holds the failed step and its message. */
export class WrennBuildError extends WrennSdkError {
  override readonly name = "WrennBuildError";
  readonly build: BuildInfo;
  /** The failed step: a number from 1, "base", "start", "ready", "snapshot", or null. */
  readonly step: string | null;

  constructor(build: BuildInfo) {
    super(build.error?.message ?? `build ${build.buildId} failed`);
    this.build = build;
    this.step = build.error?.step ?? null;
  }
}

/** A copy step's local source cannot be packed: missing, or outside its context directory. */
export class WrennCopySourceError extends WrennSdkError {
  override readonly name = "WrennCopySourceError";
}
