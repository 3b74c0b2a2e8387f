import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { brotliCompressSync, gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Browser } from "./helpers/browser.js";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

/** GET with an explicit Accept-Encoding (fetch would decode and hide what was sent). */
function rawGet(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    })
      .on("error", reject)
      .end();
  });
}

/** Reads server-sent events until `count` data frames arrived (or the time ran out). */
async function readEvents(
  res: Response,
  count: number,
  ms: number,
): Promise<Array<{ type: string; data: unknown }>> {
  const reader = res.body?.getReader();
  if (!reader) throw new Error("no body");
  const decoder = new TextDecoder();
  const events: Array<{ type: string; data: unknown }> = [];
  let buffer = "";
  const deadline = Date.now() + ms;
  while (events.length < count && Date.now() < deadline) {
    const chunk = await Promise.race([
      reader.read(),
      new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now())),
    ]);
    if (!chunk || chunk.done) break;
    buffer += decoder.decode(chunk.value, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = frame
        .split("\n")
        .filter((l) => l.startsWith("data: "))
        .map((l) => l.slice(6))
        .join("\n");
      if (data) events.push(JSON.parse(data));
      end = buffer.indexOf("\n\n");
    }
  }
  await reader.cancel();
  return events;
}

describe("the dashboard's files and the team event stream", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  let dir: string;
  const page = "<!doctype html><title>Wrenn</title>".padEnd(2000, " ");
  const script = `console.log(${JSON.stringify("x".repeat(3000))});`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-dashboard-"));
    mkdirSync(join(dir, "assets"));
    writeFileSync(join(dir, "index.html"), page);
    writeFileSync(join(dir, "index.html.br"), brotliCompressSync(page));
    writeFileSync(join(dir, "index.html.gz"), gzipSync(page));
    writeFileSync(join(dir, "assets", "app-abc123.js"), script);
    writeFileSync(join(dir, "assets", "app-abc123.js.gz"), gzipSync(script));
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, { config: { dashboardDir: dir } });
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page at / with a content security policy, never cached, compressed as the browser accepts", async () => {
    const br = await rawGet(`${fx.url}/`, { "accept-encoding": "gzip, deflate, br" });
    expect(br.status).toBe(200);
    expect(br.headers["content-encoding"]).toBe("br");
    expect(br.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(br.headers["cache-control"]).toBe("no-cache");
    expect(br.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(br.headers["content-security-policy"]).toContain("frame-ancestors 'none'");
    expect(br.headers.vary).toBe("accept-encoding");
    expect(br.body.length).toBeLessThan(page.length / 4);
    const gz = await rawGet(`${fx.url}/`, { "accept-encoding": "gzip" });
    expect(gz.headers["content-encoding"]).toBe("gzip");
    const plain = await rawGet(`${fx.url}/`);
    expect(plain.headers["content-encoding"]).toBeUndefined();
    expect(plain.body.toString()).toBe(page);
  });

  it("serves hashed assets for a year, and answers a missing one with not_found", async () => {
    const js = await rawGet(`${fx.url}/assets/app-abc123.js`, { "accept-encoding": "br, gzip" });
    expect(js.status).toBe(200);
    // No .br beside it: the gzip copy.
    expect(js.headers["content-encoding"]).toBe("gzip");
    expect(js.headers["content-type"]).toBe("text/javascript; charset=utf-8");
    expect(js.headers["cache-control"]).toContain("immutable");
    const missing = await fx.as(null)("GET", "/assets/nope.js");
    expect(missing.status).toBe(404);
    expect(missing.body).toMatchObject({ error: { code: "not_found" } });
    const traversal = await fx.as(null)("GET", "/assets/..%2f..%2fetc%2fpasswd");
    expect(traversal.status).toBe(404);
  });

  it("streams the caller's team's events and no other team's", async () => {
    const other = await fx.newTeam("other-events");
    const res = await fetch(`${fx.url}/v1/events`, { headers: { authorization: `Bearer ${fx.adminKey}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const reading = readEvents(res, 2, 5000);
    // The real bus, as the services publish on it.
    await new Promise((r) => setTimeout(r, 100));
    const { events } = fx.cp.context;
    events.publish("sandbox.created", other.teamId, { sandbox_id: "sbx-other" });
    events.publish("sandbox.created", fx.adminTeamId, { sandbox_id: "sbx-own-1" });
    events.publish("sandbox.paused", fx.adminTeamId, { sandbox_id: "sbx-own-1" });
    const got = await reading;
    expect(got.map((e) => [e.type, (e.data as { sandbox_id: string }).sandbox_id])).toEqual([
      ["sandbox.created", "sbx-own-1"],
      ["sandbox.paused", "sbx-own-1"],
    ]);
  });

  it("takes a browser session for the stream and refuses an anonymous one", async () => {
    const anon = await fx.as(null)("GET", "/v1/events");
    expect(anon.status).toBe(401);
    const b = new Browser(fx.url);
    await b.signup("events@example.com");
    const res = await fetch(`${fx.url}/v1/events`, { headers: { cookie: b.cookie ?? "" } });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });
});

describe("without a built dashboard", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, {
      config: { dashboardDir: join(tmpdir(), "wrenn-no-dashboard-here") },
    });
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  it("says how to build it instead of failing obscurely", async () => {
    const res = await fx.as(null)("GET", "/");
    expect(res.status).toBe(503);
    expect(res.body).toMatchObject({
      error: { code: "unavailable", message: expect.stringContaining("npm run build") },
    });
  });
});
