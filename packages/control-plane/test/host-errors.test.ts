import { Code, ConnectError } from "@connectrpc/connect";
import { toConnectError, WRENN_ERROR_CODE_HEADER, WrennError } from "@wrenn/shared";
import { describe, expect, it } from "vitest";
import { fromHostError } from "../src/drivers/host-errors.js";

/** What the control plane receives: a ConnectError with only code, message and metadata. */
function received(err: ConnectError): ConnectError {
  return new ConnectError(err.rawMessage, err.code, err.metadata);
}

describe("fromHostError", () => {
  it("keeps the agent's registry code, including permission_denied from the guest", () => {
    for (const code of ["conflict", "snapshot_corrupt", "permission_denied", "no_capacity"] as const) {
      const err = fromHostError(received(toConnectError(new WrennError(code, "why"))), "h1");
      expect(err).toMatchObject({ code, message: "why" });
    }
  });

  it("reads a host refusing our credential as the host being unavailable", () => {
    for (const code of [Code.Unauthenticated, Code.PermissionDenied]) {
      expect(fromHostError(new ConnectError("bad token", code), "h1")).toMatchObject({
        code: "unavailable",
        message: "host h1 unavailable: bad token",
      });
    }
    const withHeader = new ConnectError("bad token", Code.Unauthenticated, {
      [WRENN_ERROR_CODE_HEADER]: "unauthenticated",
    });
    expect(fromHostError(withHeader, "h1").code).toBe("unavailable");
  });

  it("maps bare Connect codes through the shared table and names the host where it failed", () => {
    expect(fromHostError(new ConnectError("old agent", Code.Unimplemented), "h1")).toMatchObject({
      code: "not_implemented",
      message: "host h1 does not implement this yet: old agent",
    });
    expect(fromHostError(new ConnectError("nope", Code.NotFound), "h1")).toMatchObject({
      code: "not_found",
      message: "nope",
    });
    expect(fromHostError(new Error("ECONNREFUSED"), "h1")).toMatchObject({
      code: "unavailable",
      message: "host h1 unavailable: Error: ECONNREFUSED",
    });
  });
});
