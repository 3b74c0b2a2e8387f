import { WrennError } from "@wrenn/shared";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { databaseUnavailable } from "../src/db/db-errors.js";

describe("databaseUnavailable", () => {
  it("maps a refused connection and a server shutting down to unavailable", async () => {
    const client = new pg.Client({ connectionString: "postgresql://postgres@127.0.0.1:1/none" });
    const refused = await client.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(databaseUnavailable(refused)?.code).toBe("unavailable");
    const shutdown = Object.assign(
      new pg.DatabaseError("terminating connection due to administrator command", 0, "error"),
      {
        code: "57P01",
      },
    );
    expect(databaseUnavailable(shutdown)?.code).toBe("unavailable");
    expect(databaseUnavailable(new Error("Connection terminated unexpectedly"))?.code).toBe("unavailable");
    // Wrapped by a service as internal: still the database's fault.
    expect(databaseUnavailable(WrennError.from(refused))?.code).toBe("unavailable");
  });

  it("leaves other errors alone", () => {
    const unique = Object.assign(new pg.DatabaseError("duplicate key", 0, "error"), { code: "23505" });
    expect(databaseUnavailable(unique)).toBeUndefined();
    expect(databaseUnavailable(new Error("boom"))).toBeUndefined();
    expect(databaseUnavailable("text")).toBeUndefined();
    // A deliberate code stays, whatever its cause.
    const refused = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(databaseUnavailable(new WrennError("not_found", "gone", { cause: refused }))).toBeUndefined();
  });
});
