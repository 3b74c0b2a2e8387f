import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApiClient,
  apiErrorFromResponse,
  isWrennApiError,
  WrennApiError,
  WrennConnectionError,
  WrennSdkError,
} from "../src/index.js";

describe("apiErrorFromResponse", () => {
  it("takes code and message from Wrenn's error body", () => {
    const err = apiErrorFromResponse({
      status: 404,
      statusText: "Not Found",
      bodyText: JSON.stringify({ error: { code: "not_found", message: "sandbox x not found" } }),
      method: "GET",
      path: "/v1/sandboxes/x",
    });
    expect(err).toBeInstanceOf(WrennApiError);
    expect(err).toBeInstanceOf(WrennSdkError);
    expect(err).toMatchObject({ code: "not_found", status: 404, message: "sandbox x not found" });
    expect(isWrennApiError(err, "not_found")).toBe(true);
    expect(isWrennApiError(err, "conflict")).toBe(false);
  });

  it("derives the code from the status when the body is not Wrenn's (a proxy's page)", () => {
    const err = apiErrorFromResponse({
      status: 502,
      statusText: "Bad Gateway",
      bodyText: "<html>bad gateway</html>",
      method: "GET",
      path: "/v1/x",
    });
    expect(err).toMatchObject({ code: "unavailable", status: 502, message: "<html>bad gateway</html>" });
  });

  it("keeps a code this SDK version does not know, as a newer server sent it", () => {
    const err = apiErrorFromResponse({
      status: 422,
      statusText: "",
      bodyText: JSON.stringify({ error: { code: "quota_exceeded", message: "over quota" } }),
      method: "POST",
      path: "/v1/sandboxes",
    });
    expect(err).toMatchObject({ code: "quota_exceeded", status: 422, message: "over quota" });
  });
});

/** A plain HTTP server standing in for what is not the control plane: a proxy, a hung upstream. */
describe("ApiClient against odd servers", () => {
  let server: Server;
  let url = "";
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url?.startsWith("/hang")) return; // never answers
      res.writeHead(503, { "content-type": "text/plain" }).end("upstream down");
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("turns a non-Wrenn error answer into a WrennApiError with a status-derived code", async () => {
    const api = new ApiClient({ apiUrl: url, apiKey: "wrn_x", timeoutMs: 5000 });
    await expect(api.json("GET", "/v1/sandboxes")).rejects.toMatchObject({
      name: "WrennApiError",
      code: "unavailable",
      status: 503,
      message: "upstream down",
    });
  });

  it("reports a timeout as a WrennConnectionError with timedOut", async () => {
    const api = new ApiClient({ apiUrl: url, apiKey: "wrn_x", timeoutMs: 200 });
    const err = await api.json("GET", "/hang").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrennConnectionError);
    expect(err).toMatchObject({ timedOut: true, message: "GET /hang timed out after 200 ms" });
  });

  it("reports a refused connection as a WrennConnectionError naming the reason", async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const api = new ApiClient({ apiUrl: `http://127.0.0.1:${port}`, apiKey: "wrn_x", timeoutMs: 5000 });
    const err = await api.json("GET", "/v1/sandboxes").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrennConnectionError);
    expect(err).toMatchObject({ timedOut: false });
    expect((err as Error).message).toMatch(
      /cannot reach the Wrenn API at http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED/,
    );
  });
});
