/**
 * The one registry of Wrenn error codes. Each code has exactly one HTTP status;
 * adding a code without a status does not compile.
 */
export const ERROR_CODES = [
  "invalid_argument",
  "unauthenticated",
  "permission_denied",
  "not_found",
  "already_exists",
  "conflict",
  "failed_precondition",
  "payload_too_large",
  "resource_exhausted",
  "no_capacity",
  "deadline_exceeded",
  "unavailable",
  "not_implemented",
  "snapshot_corrupt",
  "registration_token_invalid",
  "refresh_token_reused",
  "host_revoked",
  "host_draining",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export const HTTP_STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  already_exists: 409,
  conflict: 409,
  failed_precondition: 412,
  payload_too_large: 413,
  resource_exhausted: 429,
  no_capacity: 503,
  deadline_exceeded: 504,
  unavailable: 503,
  not_implemented: 501,
  /** A stored snapshot fails its checks (missing file, checksum); it is never restored from. */
  snapshot_corrupt: 500,
  /** A host registration token that is unknown, already used or expired. */
  registration_token_invalid: 401,
  /** A host refresh token presented again after its successor was used: the host is revoked. */
  refresh_token_reused: 401,
  /** The host's credentials were revoked (refresh-token reuse); it must be enrolled again. */
  host_revoked: 403,
  /** The host takes no new placements while it drains. */
  host_draining: 412,
  internal: 500,
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" && (ERROR_CODES as readonly string[]).includes(value);
}
