import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { Browser } from "./helpers/browser.js";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type ErrorBody = { error: { code: string; message: string } };

/** Accounts and browser sessions over a real control plane and PGlite. */
describe("accounts and sessions", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  const newBrowser = (origin?: string) => new Browser(fx.url, origin);

  const insertSandbox = (id: string, teamId: string) =>
    t.database.db
      .insertInto("sandboxes")
      .values({
        id,
        team_id: teamId,
        host_id: null,
        template: "base",
        snapshot_id: null,
        state: "paused",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
        timeout_sec: 300,
        metadata: "{}",
        envd_access_token: `token-of-${id}`,
        host_ip: null,
        error: null,
        expires_at: null,
        stopped_at: null,
      })
      .execute();

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, {
      config: { signinMaxFailuresPerEmail: 3, signinMaxFailuresPerIp: 12 },
    });
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  it("signs up: a team of one's own as owner, an httpOnly SameSite=Lax cookie, a CSRF token", async () => {
    const b = newBrowser();
    const res = await b.signup("Alice@Example.com");
    expect(res.status).toBe(201);
    expect(res.body.user.email).toBe("alice@example.com");
    expect(res.body.role).toBe("owner");
    expect(res.body.teams).toEqual([expect.objectContaining({ id: res.body.team.id, role: "owner" })]);
    expect(res.body.csrfToken.length).toBeGreaterThan(20);
    const cookie = b.lastSetCookie ?? "";
    expect(cookie).toMatch(/^wrenn_session=wrns_[0-9a-f]{40}; /);
    expect(cookie).toContain("HttpOnly");
    expect(cookie).toContain("SameSite=Lax");
    expect(cookie).toContain("Path=/");
    expect(cookie).toContain(`Max-Age=${14 * 24 * 3600}`);
    // Plain http: a Secure cookie would never come back.
    expect(cookie).not.toContain("Secure");
    const session = await b.call<{ user: { email: string }; csrfToken: string }>("GET", "/v1/auth/session");
    expect(session.status).toBe(200);
    expect(session.body.csrfToken).toBe(res.body.csrfToken);
    // The session row holds the token's hash, never the token.
    const rows = await t.database.db.selectFrom("sessions").select("id").execute();
    expect(rows.map((r) => r.id)).not.toContain(b.cookie?.split("=")[1]);
  });

  it("refuses a second account for the same email and passwords outside 10-256 characters", async () => {
    expect((await newBrowser().signup("alice@example.com")).status).toBe(409);
    const short = await newBrowser().signup("short@example.com", "123456789");
    expect(short.status).toBe(400);
    expect((short.body as unknown as ErrorBody).error.code).toBe("invalid_argument");
    expect((await newBrowser().signup("long@example.com", "x".repeat(257))).status).toBe(400);
  });

  it("a session lists the team's sandboxes like an API key does, and only its own team's", async () => {
    const a = newBrowser();
    const aTeam = (await a.signup("owner-a@example.com")).body.team.id;
    const b = newBrowser();
    const bTeam = (await b.signup("owner-b@example.com")).body.team.id;
    await insertSandbox("accountssbxa000000000", aTeam);
    await insertSandbox("accountssbxb000000000", bTeam);
    const list = await a.call<{ items: { id: string }[] }>("GET", "/v1/sandboxes");
    expect(list.status).toBe(200);
    expect(list.body.items.map((s) => s.id)).toEqual(["accountssbxa000000000"]);
    expect((await a.call("GET", "/v1/sandboxes/accountssbxb000000000")).status).toBe(404);
    // Keys: B's key is neither listed nor reachable by A.
    const bKey = await b.call<{ id: string; key: string }>("POST", "/v1/api-keys", { name: "b-key" });
    expect(bKey.status).toBe(201);
    const aKeys = await a.call<{ items: { id: string }[] }>("GET", "/v1/api-keys");
    expect(aKeys.body.items.map((k) => k.id)).not.toContain(bKey.body.id);
    expect((await a.call("GET", `/v1/api-keys/${bKey.body.id}`)).status).toBe(404);
    expect((await a.call("DELETE", `/v1/api-keys/${bKey.body.id}`)).status).toBe(404);
    // The key B made from the browser works as an API key, on every route, with no CSRF token.
    const viaKey = await fx.as(bKey.body.key)<{ items: { id: string }[] }>("POST", "/v1/api-keys", {
      name: "from-key",
    });
    expect(viaKey.status).toBe(201);
    const bList = await fx.as(bKey.body.key)<{ items: { id: string }[] }>("GET", "/v1/sandboxes");
    expect(bList.body.items.map((s) => s.id)).toEqual(["accountssbxb000000000"]);
  });

  describe("CSRF", () => {
    let b: Browser;
    beforeAll(async () => {
      b = newBrowser();
      await b.signup("csrf@example.com");
    });

    it("a state change with the cookie but without the token is refused", async () => {
      const res = await b.call<ErrorBody>("POST", "/v1/api-keys", { name: "no-token" }, { csrf: false });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
      const wrong = await b.call<ErrorBody>(
        "POST",
        "/v1/api-keys",
        { name: "wrong-token" },
        { csrf: false, headers: { "x-csrf-token": "not-the-token" } },
      );
      expect(wrong.status).toBe(403);
    });

    it("the token from a foreign Origin (or Referer) is refused", async () => {
      const evil = new Browser(fx.url, "http://evil.example");
      evil.cookie = b.cookie;
      evil.csrfToken = b.csrfToken;
      const res = await evil.call<ErrorBody>("POST", "/v1/api-keys", { name: "evil" });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe("permission_denied");
      const viaReferer = await b.call<ErrorBody>(
        "DELETE",
        "/v1/api-keys/key_x",
        undefined,
        // No Origin: the Referer decides.
        { headers: { origin: "", referer: "http://evil.example/page" } },
      );
      expect(viaReferer.status).toBe(403);
    });

    it("a cross-site form post is refused", async () => {
      const res = await fetch(`${fx.url}/v1/api-keys`, {
        method: "POST",
        headers: {
          cookie: b.cookie ?? "",
          "content-type": "application/x-www-form-urlencoded",
          origin: "http://evil.example",
        },
        body: "name=evil",
      });
      expect(res.status).toBe(403);
      expect(((await res.json()) as ErrorBody).error.code).toBe("permission_denied");
      // Even without an Origin header, the missing token refuses it.
      const noOrigin = await fetch(`${fx.url}/v1/team/invitations`, {
        method: "POST",
        headers: { cookie: b.cookie ?? "", "content-type": "application/x-www-form-urlencoded" },
        body: "email=x%40example.com",
      });
      expect(noOrigin.status).toBe(403);
      const keys = await b.call<{ items: { name: string }[] }>("GET", "/v1/api-keys");
      expect(keys.body.items.map((k) => k.name)).toEqual([]);
    });

    it("with the token from the same origin, the change is made", async () => {
      const res = await b.call<{ key: string }>("POST", "/v1/api-keys", { name: "ok" });
      expect(res.status).toBe(201);
    });

    it("the terminal WebSocket takes the cookie from this origin only", async () => {
      const wsUrl = `${fx.url.replace("http", "ws")}/v1/sandboxes/nosuchsandbox0000000/pty/ws`;
      const firstMessage = (origin: string) =>
        new Promise<{ type: string; code: string }>((resolve, reject) => {
          const ws = new WebSocket(wsUrl, { headers: { cookie: b.cookie ?? "", origin } });
          ws.once("message", (data) => {
            resolve(JSON.parse(data.toString()) as { type: string; code: string });
            ws.close();
          });
          ws.once("error", reject);
        });
      expect(await firstMessage("http://evil.example")).toMatchObject({
        type: "error",
        code: "permission_denied",
      });
      // Authenticated: the start message is awaited, then the sandbox is looked up.
      const ws = new WebSocket(wsUrl, { headers: { cookie: b.cookie ?? "", origin: fx.url } });
      const reply = await new Promise<{ type: string; code: string }>((resolve, reject) => {
        ws.once("open", () => ws.send(JSON.stringify({ type: "start", cols: 80, rows: 24 })));
        ws.once("message", (data) => resolve(JSON.parse(data.toString()) as { type: string; code: string }));
        ws.once("error", reject);
      });
      ws.close();
      expect(reply).toMatchObject({ type: "error", code: "not_found" });
    });
  });

  it("signs out: the cookie is cleared and the old token no longer works", async () => {
    const b = newBrowser();
    await b.signup("leaver@example.com");
    const old = b.cookie;
    const out = await b.call("POST", "/v1/auth/signout");
    expect(out.status).toBe(204);
    expect(b.lastSetCookie).toContain("Max-Age=0");
    expect(b.cookie).toBeNull();
    const again = await fetch(`${fx.url}/v1/sandboxes`, { headers: { cookie: old ?? "" } });
    expect(again.status).toBe(401);
    const signedIn = await b.signin("leaver@example.com");
    expect(signedIn.status).toBe(200);
    expect((await b.call("GET", "/v1/sandboxes")).status).toBe(200);
  });

  it("the bootstrap admin signs in with the password printed once, as owner of the admin team", async () => {
    const admin = await t.database.db
      .selectFrom("users")
      .select(["email", "password_hash"])
      .where("email", "=", "admin@localhost")
      .executeTakeFirstOrThrow();
    expect(admin.password_hash).toMatch(/^\$argon2id\$/);
    expect(fx.adminPassword).toBeTruthy();
    const b = newBrowser();
    const res = await b.signin("admin@localhost", fx.adminPassword ?? "");
    expect(res.status).toBe(200);
    expect(res.body.team.id).toBe(fx.adminTeamId);
    expect(res.body.role).toBe("owner");
  });

  describe("sign-in failures", () => {
    it("an unknown email and a wrong password fail alike", async () => {
      await newBrowser().signup("known@example.com");
      const unknown = await newBrowser().signin("nobody@example.com");
      const wrong = await newBrowser().signin("known@example.com", "wrong password!");
      expect(unknown.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect(unknown.body).toEqual(wrong.body);
    });

    it("throttles an email after repeated failures, even for the right password", async () => {
      await newBrowser().signup("target@example.com");
      for (let i = 0; i < 3; i++)
        expect((await newBrowser().signin("target@example.com", "guess-guess")).status).toBe(401);
      const right = await newBrowser().signin("target@example.com");
      expect(right.status).toBe(429);
      expect(right.body.error?.code).toBe("resource_exhausted");
      // Other emails are not locked out by it.
      expect((await newBrowser().signin("known@example.com")).status).toBe(200);
    });

    it("throttles a client address after repeated failures across emails", async () => {
      // 12 per address: the earlier tests used 5 (alice's duplicate was a sign-up, not a sign-in).
      for (let i = 0; i < 12; i++) {
        const res = await newBrowser().signin(`spray-${i}@example.com`, "guess-guess");
        if (res.status === 429) break;
      }
      const res = await newBrowser().signin("known@example.com");
      expect(res.status).toBe(429);
    });

    it("writes sign-ups, sign-ins (failed and throttled too) and sign-outs to the audit log", async () => {
      const all = await t.database.db
        .selectFrom("audit_logs")
        .select(["action", "result", "error_code"])
        .execute();
      const global = all.map((r) => `${r.action}:${r.result}:${r.error_code ?? ""}`);
      for (const a of [
        "auth.signup:success:",
        "auth.signin:success:",
        "auth.signin:failure:unauthenticated",
        "auth.signin:failure:resource_exhausted",
        "auth.signout:success:",
      ]) {
        expect(global).toContain(a);
      }
    });
  });
});
