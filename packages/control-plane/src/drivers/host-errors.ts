import { Code, ConnectError } from "@connectrpc/connect";
import { fromConnectError, isErrorCode, WRENN_ERROR_CODE_HEADER, WrennError } from "@wrenn/shared";

/**
 * A failed host-agent RPC as a WrennError: the agent's registry code when it sent one,
 * else the Connect code's (both via `@wrenn/shared`). A host refusing our credential is
 * `unavailable` to the API caller (the caller's own key is fine; the host is misconfigured),
 * and messages name the host when it is the host that failed.
 */
export function fromHostError(err: unknown, hostId: string): WrennError {
  if (err instanceof ConnectError) {
    const sentByAgent = isErrorCode(err.metadata.get(WRENN_ERROR_CODE_HEADER));
    const refused = err.code === Code.Unauthenticated || (err.code === Code.PermissionDenied && !sentByAgent);
    const mapped = refused ? "unavailable" : fromConnectError(err).code;
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
