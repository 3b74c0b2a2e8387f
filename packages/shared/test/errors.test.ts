import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  CONNECT_CODE_BY_ERROR_CODE,
  ERROR_CODE_BY_CONNECT_CODE,
  ERROR_CODES,
  errorCodeForStatus,
  fromConnectError,
  HTTP_STATUS_BY_CODE,
  parseHttpError,
  toConnectError,
  WRENN_ERROR_CODE_HEADER,
  WrennError,
  wrennErrorFromHttp,
} from "../src/errors/index.js";

describe("HTTP status ↔ code", () => {
  it("maps every registry status back to a code with that status", () => {
    for (const code of ERROR_CODES) {
      const status = HTTP_STATUS_BY_CODE[code];
      expect(HTTP_STATUS_BY_CODE[errorCodeForStatus(status)]).toBe(status);
    }
  });

  it("reads a shared status as its general code, and foreign statuses sensibly", () => {
    expect(errorCodeForStatus(409)).toBe("conflict");
    expect(errorCodeForStatus(503)).toBe("unavailable");
    expect(errorCodeForStatus(500)).toBe("internal");
    expect(errorCodeForStatus(422)).toBe("invalid_argument");
    expect(errorCodeForStatus(502)).toBe("unavailable");
    expect(errorCodeForStatus(418)).toBe("internal");
  });
});

describe("HTTP error bodies", () => {
  it("takes code and message from Wrenn's body, keeping a code it does not know", () => {
    const body = (code: string) => JSON.stringify({ error: { code, message: "m" } });
    expect(parseHttpError({ status: 404, bodyText: body("not_found") })).toEqual({
      code: "not_found",
      message: "m",
    });
    expect(parseHttpError({ status: 400, bodyText: body("from_the_future") })).toEqual({
      code: "from_the_future",
      message: "m",
    });
    const known = wrennErrorFromHttp({ status: 400, bodyText: body("from_the_future") });
    expect(known).toBeInstanceOf(WrennError);
    expect(known.code).toBe("invalid_argument");
  });

  it("falls back to the status and the raw text (or status text) for other bodies", () => {
    expect(parseHttpError({ status: 502, bodyText: "<html>bad gateway</html>" })).toEqual({
      code: "unavailable",
      message: "<html>bad gateway</html>",
    });
    expect(parseHttpError({ status: 504, bodyText: "", statusText: "Gateway Timeout" })).toEqual({
      code: "deadline_exceeded",
      message: "Gateway Timeout",
    });
    expect(parseHttpError({ status: 500, bodyText: "null" })).toEqual({ code: "internal", message: "null" });
  });
});

describe("Connect ↔ code", () => {
  it("carries every registry code exactly through a ConnectError and back", () => {
    for (const code of ERROR_CODES) {
      const wire = toConnectError(new WrennError(code, `a ${code}`));
      expect(wire.code).toBe(CONNECT_CODE_BY_ERROR_CODE[code]);
      expect(wire.metadata.get(WRENN_ERROR_CODE_HEADER)).toBe(code);
      // What a client sees: a fresh ConnectError with only the code, message and metadata.
      const received = new ConnectError(wire.rawMessage, wire.code, wire.metadata);
      expect(fromConnectError(received)).toMatchObject({ code, message: `a ${code}` });
    }
  });

  it("maps a bare Connect code onto a code of the same Connect code (a corrupt snapshot only by header)", () => {
    for (const code of ERROR_CODES) {
      const connect = CONNECT_CODE_BY_ERROR_CODE[code];
      const back = ERROR_CODE_BY_CONNECT_CODE[connect];
      if (code === "snapshot_corrupt") expect(back).toBe("internal");
      else expect(CONNECT_CODE_BY_ERROR_CODE[back]).toBe(connect);
    }
    expect(fromConnectError(new ConnectError("gone", Code.NotFound)).code).toBe("not_found");
    expect(fromConnectError(new ConnectError("x", Code.Unknown)).code).toBe("internal");
  });

  it("ignores a header value outside the registry, and wraps what is not a ConnectError", () => {
    const odd = new ConnectError("x", Code.Unavailable, { [WRENN_ERROR_CODE_HEADER]: "nonsense" });
    expect(fromConnectError(odd).code).toBe("unavailable");
    expect(fromConnectError(new Error("plain")).code).toBe("internal");
    const passed = new ConnectError("kept", Code.Aborted);
    expect(toConnectError(passed)).toBe(passed);
  });
});
