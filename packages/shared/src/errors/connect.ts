import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorCode, isErrorCode } from "./codes.js";
import { WrennError } from "./wrenn-error.js";

/** The response header (Connect metadata) carrying the exact registry code beside the coarser Connect code. */
export const WRENN_ERROR_CODE_HEADER = "wrenn-error-code";

/** Registry code → Connect code, for servers. */
export const CONNECT_CODE_BY_ERROR_CODE: Record<ErrorCode, Code> = {
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
  registration_token_invalid: Code.Unauthenticated,
  refresh_token_reused: Code.Unauthenticated,
  host_revoked: Code.PermissionDenied,
  host_draining: Code.FailedPrecondition,
  internal: Code.Internal,
};

/**
 * Connect code → registry code, for clients of a server that sent no Wrenn header
 * (envd, or a proxy). DataLoss stays `internal`: only the header may claim a corrupt snapshot.
 */
export const ERROR_CODE_BY_CONNECT_CODE: Record<Code, ErrorCode> = {
  [Code.Canceled]: "unavailable",
  [Code.Unknown]: "internal",
  [Code.InvalidArgument]: "invalid_argument",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "conflict",
  [Code.OutOfRange]: "invalid_argument",
  [Code.Unimplemented]: "not_implemented",
  [Code.Internal]: "internal",
  [Code.Unavailable]: "unavailable",
  [Code.DataLoss]: "internal",
  [Code.Unauthenticated]: "unauthenticated",
};

/** Anything thrown → a ConnectError with the registry code in its metadata; ConnectErrors pass as they are. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const wrenn = WrennError.from(err);
  const error = new ConnectError(wrenn.message, CONNECT_CODE_BY_ERROR_CODE[wrenn.code], {
    [WRENN_ERROR_CODE_HEADER]: wrenn.code,
  });
  error.cause = wrenn;
  return error;
}

/**
 * A failed RPC → WrennError: the server's registry code from the header when it sent one,
 * else the Connect code's. Anything else thrown goes through `WrennError.from`.
 */
export function fromConnectError(err: unknown): WrennError {
  if (err instanceof ConnectError) {
    const header = err.metadata.get(WRENN_ERROR_CODE_HEADER);
    const code = isErrorCode(header) ? header : ERROR_CODE_BY_CONNECT_CODE[err.code];
    return new WrennError(code, err.rawMessage, { cause: err });
  }
  return WrennError.from(err);
}
