import { type ErrorCode, HTTP_STATUS_BY_CODE, isErrorCode } from "./codes.js";

export interface WrennErrorBody {
  error: { code: ErrorCode; message: string };
}

/** An error with a stable code from the registry, a human message and an optional cause. */
export class WrennError extends Error {
  override readonly name = "WrennError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  get httpStatus(): number {
    return HTTP_STATUS_BY_CODE[this.code];
  }

  toBody(): WrennErrorBody {
    return { error: { code: this.code, message: this.message } };
  }

  /** Wraps anything thrown into a WrennError, keeping WrennErrors as they are. */
  static from(err: unknown, fallback: ErrorCode = "internal"): WrennError {
    if (err instanceof WrennError) return err;
    if (err instanceof Error) {
      const code = (err as { code?: unknown }).code;
      return new WrennError(isErrorCode(code) ? code : fallback, err.message, { cause: err });
    }
    return new WrennError(fallback, String(err), { cause: err });
  }
}

export function errorBody(code: ErrorCode, message: string): WrennErrorBody {
  return { error: { code, message } };
}
