import { ConnectError } from "@connectrpc/connect";
import {
  ERROR_CODE_BY_CONNECT_CODE,
  type ErrorCode,
  errorCodeForStatus,
  isErrorCode,
  WRENN_ERROR_CODE_HEADER,
  WrennError,
} from "@wrenn/shared";

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
    return new WrennError(ERROR_CODE_BY_CONNECT_CODE[err.code], `${what}: ${err.rawMessage}`, {
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
  const code = isErrorCode(hopCode) ? hopCode : errorCodeForStatus(res.status);
  return new WrennError(code, `${what}: ${message || `HTTP ${res.status}`}`);
}
