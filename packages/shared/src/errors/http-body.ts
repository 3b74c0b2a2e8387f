import { type ErrorCode, isErrorCode } from "./codes.js";
import { errorCodeForStatus } from "./http-status.js";
import { WrennError } from "./wrenn-error.js";

/** What an error answer says: the body's code and message when it has Wrenn's shape, else the status's code. */
export interface HttpErrorInfo {
  /** A registry code, or a code this version does not know (a newer server's), kept as sent. */
  code: ErrorCode | (string & {});
  message: string;
}

/** Reads an error answer (`{"error": {"code", "message"}}`, or anything else) into a code and message. */
export function parseHttpError(input: {
  status: number;
  bodyText: string;
  statusText?: string;
}): HttpErrorInfo {
  let code: HttpErrorInfo["code"] = errorCodeForStatus(input.status);
  let message = input.bodyText.trim().slice(0, 500) || input.statusText || `HTTP ${input.status}`;
  try {
    const body = JSON.parse(input.bodyText) as { error?: { code?: unknown; message?: unknown } } | null;
    if (body?.error && typeof body.error.code === "string") {
      code = body.error.code;
      if (typeof body.error.message === "string") message = body.error.message;
    }
  } catch {
    // not JSON: the status's code and the raw text stand
  }
  return { code, message };
}

/** An error answer as a WrennError; a code outside the registry becomes its status's code. */
export function wrennErrorFromHttp(input: {
  status: number;
  bodyText: string;
  statusText?: string;
}): WrennError {
  const info = parseHttpError(input);
  const code = isErrorCode(info.code) ? info.code : errorCodeForStatus(input.status);
  return new WrennError(code, info.message);
}
