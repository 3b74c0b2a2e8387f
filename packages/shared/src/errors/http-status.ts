import { ERROR_CODES, type ErrorCode, HTTP_STATUS_BY_CODE } from "./codes.js";

/**
 * Where several codes share one status, the general one is what an answer without
 * Wrenn's body (a proxy's 503, say) means; the specific ones are only ever sent by name.
 */
const GENERAL_CODE_FOR_SHARED_STATUS: readonly ErrorCode[] = ["conflict", "unavailable", "internal"];

/** Statuses Wrenn never sends but proxies and frameworks do. */
const FOREIGN_STATUS_CODES: Readonly<Record<number, ErrorCode>> = {
  422: "invalid_argument",
  502: "unavailable",
  507: "resource_exhausted",
};

const CODE_BY_STATUS: ReadonlyMap<number, ErrorCode> = (() => {
  const map = new Map<number, ErrorCode>();
  for (const code of ERROR_CODES) {
    const status = HTTP_STATUS_BY_CODE[code];
    if (!map.has(status) || GENERAL_CODE_FOR_SHARED_STATUS.includes(code)) map.set(status, code);
  }
  for (const [status, code] of Object.entries(FOREIGN_STATUS_CODES)) map.set(Number(status), code);
  return map;
})();

/** The registry code an HTTP status stands for when the body names none (the reverse of HTTP_STATUS_BY_CODE). */
export function errorCodeForStatus(status: number): ErrorCode {
  return CODE_BY_STATUS.get(status) ?? "internal";
}
