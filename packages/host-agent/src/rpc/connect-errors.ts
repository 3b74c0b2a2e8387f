import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorCode, isErrorCode, WrennError } from "@wrenn/shared";

/** The header carrying the exact Wrenn error code beside the coarser Connect code. */
export const WRENN_ERROR_CODE_HEADER = "wrenn-error-code";

const CONNECT_CODE: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  already_exists: Code.AlreadyExists,
  conflict: Code.Aborted,
  failed_precondition: Code.FailedPrecondition,
  payload_too_large: Code.ResourceExhausted,
  resource_exhausted: Code.ResourceExhausted,
  no_capacity: Code.ResourceExhausted,
  deadline_exceeded: Code.DeadlineExceeded,
  unavailable: Code.Unavailable,
  not_implemented: Code.Unimplemented,
  snapshot_corrupt: Code.DataLoss,
  internal: Code.Internal,
};

/** WrennError (or anything thrown) → ConnectError that keeps the registry code. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const wrenn = WrennError.from(err);
  const error = new ConnectError(wrenn.message, CONNECT_CODE[wrenn.code], {
    [WRENN_ERROR_CODE_HEADER]: wrenn.code,
  });
  error.cause = wrenn;
  return error;
}

/** The client side: ConnectError from the agent → WrennError with the original code. */
export function fromConnectError(err: unknown): WrennError {
  if (err instanceof ConnectError) {
    const code = err.metadata.get(WRENN_ERROR_CODE_HEADER);
    if (isErrorCode(code)) return new WrennError(code, err.rawMessage, { cause: err });
    return new WrennError(err.code === Code.Unavailable ? "unavailable" : "internal", err.rawMessage, {
      cause: err,
    });
  }
  return WrennError.from(err);
}
