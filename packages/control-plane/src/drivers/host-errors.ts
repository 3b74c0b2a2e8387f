import { Code, ConnectError } from "@connectrpc/connect";
import { isErrorCode, WrennError } from "@wrenn/shared";

/** The response header/metadata where a host agent puts the exact registry code. */
export const WRENN_ERROR_CODE_HEADER = "wrenn-error-code";

const BY_CONNECT_CODE: Partial<Record<Code, WrennError["code"]>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Aborted]: "conflict",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.Unavailable]: "unavailable",
  [Code.Unimplemented]: "not_implemented",
  [Code.Unauthenticated]: "unavailable",
  [Code.PermissionDenied]: "unavailable",
  [Code.Canceled]: "unavailable",
};

/**
 * A failed host-agent RPC as a WrennError. The agent's own code wins; otherwise the
 * Connect code maps over. A host refusing our credential is `unavailable` to the API
 * caller (the caller's own key is fine; the host is misconfigured).
 */
export function fromHostError(err: unknown, hostId: string): WrennError {
  if (err instanceof ConnectError) {
    const code = err.metadata.get(WRENN_ERROR_CODE_HEADER);
    if (isErrorCode(code) && err.code !== Code.Unauthenticated) {
      return new WrennError(code, err.rawMessage, { cause: err });
    }
    const mapped = BY_CONNECT_CODE[err.code] ?? "internal";
    const message =
      mapped === "not_implemented"
        ? `host ${hostId} does not implement this yet: ${err.rawMessage}`
        : mapped === "unavailable"
          ? `host ${hostId} unavailable: ${err.rawMessage}`
          : err.rawMessage;
    return new WrennError(mapped, message, { cause: err });
  }
  if (err instanceof WrennError) return err;
  return new WrennError("unavailable", `host ${hostId} unavailable: ${String(err)}`, { cause: err });
}
