import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "../../packages/control-plane/test/helpers/cp-fixture.js";
import {
  openTestDatabase,
  type TestDatabase,
} from "../../packages/control-plane/test/helpers/test-databases.js";
import { ensureLocalTls } from "../../scripts/local-tls.js";

interface TlsResponse {
  status: number;
  setCookie: string[];
  body: string;
}

/** One HTTPS request to the TLS listener (its local CA is not what this test is about). */
function httpsCall(
  url: string,
  method: string,
  body: unknown,
  headers: Record<string, string>,
): Promise<TlsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, rejectUnauthorized: false }, (res) => {
      let text = "";
      res.on("data", (d: Buffer) => (text += d.toString()));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, setCookie: res.headers["set-cookie"] ?? [], body: text }),
      );
    });
    req.once("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The session cookie over the TLS listener: Secure, and the origin compared is https://. */
describe("session cookie over TLS", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  const dir = mkdtempSync(join(tmpdir(), "wrenn-session-tls-"));

  beforeAll(async () => {
    const tls = await ensureLocalTls(dir, "wrenn.localhost");
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, {
      config: { tlsCertPath: tls.certPath, tlsKeyPath: tls.keyPath, tlsPort: 0 },
    });
  }, 120_000);
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("sets a Secure cookie and takes same-origin (https) state changes with the token", async () => {
    const base = fx.cp.tlsUrl;
    const json = { "content-type": "application/json" };
    const signup = await httpsCall(
      `${base}/v1/auth/signup`,
      "POST",
      { email: "tls@example.com", password: "correct horse battery" },
      { ...json, origin: base },
    );
    expect(signup.status).toBe(201);
    const cookie = signup.setCookie.find((c) => c.startsWith("wrenn_session=")) ?? "";
    expect(cookie).toContain("Secure");
    expect(cookie).toContain("HttpOnly");
    const csrf = (JSON.parse(signup.body) as { csrfToken: string }).csrfToken;
    const session = cookie.split(";")[0] ?? "";
    const made = await httpsCall(
      `${base}/v1/api-keys`,
      "POST",
      { name: "over-tls" },
      { ...json, cookie: session, origin: base, "x-csrf-token": csrf },
    );
    expect(made.status).toBe(201);
    // The plain-http origin of the same host is another origin.
    const httpOrigin = await httpsCall(
      `${base}/v1/api-keys`,
      "POST",
      { name: "mixed" },
      { ...json, cookie: session, origin: base.replace("https:", "http:"), "x-csrf-token": csrf },
    );
    expect(httpOrigin.status).toBe(403);
  });
});
