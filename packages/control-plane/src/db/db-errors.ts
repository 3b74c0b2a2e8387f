import { WrennError } from "@wrenn/shared";
import pg from "pg";

/** Socket errors of a connection to PostgreSQL that went away or was refused. */
const CONNECTION_ERRNOS = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT"]);

/**
 * A query that failed because PostgreSQL is unreachable, restarting or shutting down (SQLSTATE
 * class 08 connection exception or 57P operator intervention, a refused or dropped socket) as
 * `unavailable`: the caller retries, and the pool reconnects on its own. The error may be the
 * cause of an `internal` WrennError a service wrapped it in. Undefined for any other error,
 * which keeps its own mapping.
 */
export function databaseUnavailable(err: unknown): WrennError | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 4; depth++, e = e.cause) {
    if (e instanceof WrennError && e.code !== "internal") return undefined;
    if (isConnectionFailure(e))
      return new WrennError("unavailable", `the database is unavailable (${e.message}); retry`, {
        cause: err,
      });
  }
  return undefined;
}

function isConnectionFailure(err: Error): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== "string") return err.message === "Connection terminated unexpectedly";
  return (err instanceof pg.DatabaseError && /^(08|57P)/.test(code)) || CONNECTION_ERRNOS.has(code);
}
