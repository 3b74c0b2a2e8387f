import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorCode, isErrorCode, WrennError } from "@wrenn/shared";
import { WRENN_ERROR_CODE_HEADER } from "./traffic-hop.js";

/** Connect codes envd answers with, mapped onto the registry. */
const BY_CONNECT_CODE: Partial<Record<Code, ErrorCode>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.PermissionDenied]: "permission_denied",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.Unavailable]: "unavailable",
  [Code.Canceled]: "unavailable",
  [Code.Unimplemented]: "not_implemented",
};

/** HTTP statuses of envd's plain endpoints (`/files`), mapped onto the registry. */
function codeOfStatus(status: number): ErrorCode {
  if (status === 400) return "invalid_argument";
  if (status === 401) return "unauthenticated";
  if (status === 403) return "permission_denied";
  if (status === 404) return "not_found";
  if (status === 413 || status === 507) return "resource_exhausted";
  if (status === 502 || status === 503) return "unavailable";
  return "internal";
}

/** What the traffic hop means by its own refusals (its body is the e2b shape, not Connect's). */
const HOP_MESSAGE: Partial<Record<ErrorCode, string>> = {
  not_found: "the sandbox is not running on its host",
  unavailable: "the host refused the hop credential",
  invalid_argument: "the hop headers are missing or malformed",
};

/**
 * Anything a guest call threw, as a WrennError: the traffic hop's own code (its
 * `wrenn-error-code` header) wins, then envd's Connect code; a connection that failed is
 * `unavailable`.
 */
export function guestError(err: unknown, what: string): WrennError {
  if (err instanceof WrennError) return err;
  if (err instanceof ConnectError) {
    const hopCode = err.metadata.get(WRENN_ERROR_CODE_HEADER);
    if (isErrorCode(hopCode)) {
      const message = /^HTTP \d+$/.test(err.rawMessage)
        ? (HOP_MESSAGE[hopCode] ?? err.rawMessage)
        : err.rawMessage;
      return new WrennError(hopCode, `${what}: ${message}`, { cause: err });
    }
    return new WrennError(BY_CONNECT_CODE[err.code] ?? "internal", `${what}: ${err.rawMessage}`, {
      cause: err,
    });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new WrennError("unavailable", `${what}: guest unreachable (${message})`, { cause: err });
}

/** A failed answer of envd's HTTP endpoints (or of the hop in front of them) as a WrennError. */
export async function httpError(
  res: { status: number; headers: { get(name: string): string | null }; text(): Promise<string> },
  what: string,
): Promise<WrennError> {
  const text = await res.text().catch(() => "");
  let message = text;
  try {
    message = (JSON.parse(text) as { message?: string }).message ?? text;
  } catch {}
  const hopCode = res.headers.get(WRENN_ERROR_CODE_HEADER);
  const code = isErrorCode(hopCode) ? hopCode : codeOfStatus(res.status);
  return new WrennError(code, `${what}: ${message || `HTTP ${res.status}`}`);
}
