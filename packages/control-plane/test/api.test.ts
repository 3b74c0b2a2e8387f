import {
  CreatedSandboxSchema,
  DEFAULT_SANDBOX_LIMITS,
  ExecResultSchema,
  sandboxBodySchemas,
} from "@wrenn/api";
import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { DATABASE_KINDS, openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type ErrorBody = { error: { code: string; message: string } };

/** The REST API without VMs (auth, keys, teams, hosts, validation, audit), on both databases. */
describe.each(DATABASE_KINDS)("control plane API (%s)", (kind) => {
  let t: TestDatabase;
  let fx: CpFixture;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    fx = await startControlPlane(t.database);
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  it("GET /health answers without auth: version, database kind, hosts", async () => {
    const res = await fx.as(null)("GET", "/health");
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "ok", version: "0.1.0", database: kind, hosts: [] });
  });

  it("serves the OpenAPI document and an API reference page", async () => {
    const doc = await fx.as(null)<{ openapi: string; paths: Record<string, Record<string, unknown>> }>(
      "GET",
      "/openapi.json",
    );
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.0.3");
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        "/v1/sandboxes",
        "/v1/sandboxes/{id}/exec",
        "/v1/snapshots",
        "/v1/api-keys",
        "/v1/hosts",
      ]),
    );
    expect(JSON.stringify(doc.body.paths["/v1/sandboxes"]?.post)).toContain("memory_mb");
    const page = await fetch(`${fx.url}/docs`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain("/openapi.json");
  });

  it("documents the @wrenn/api schemas: bodies and views as the contract defines them", async () => {
    type Op = {
      requestBody?: { content: Record<string, { schema: { properties: object } }> };
      responses: Record<string, { content?: Record<string, { schema: { properties?: object } }> }>;
    };
    const doc = await fx.as(null)<{ paths: Record<string, Record<string, Op>> }>("GET", "/openapi.json");
    const op = (path: string, method: string) => doc.body.paths[path]?.[method] as Op;
    const create = op("/v1/sandboxes", "post");
    expect(
      Object.keys(create.requestBody?.content["application/json"]?.schema.properties ?? {}).sort(),
    ).toEqual(Object.keys(sandboxBodySchemas(DEFAULT_SANDBOX_LIMITS).create.shape).sort());
    expect(
      Object.keys(create.responses["201"]?.content?.["application/json"]?.schema.properties ?? {}).sort(),
    ).toEqual(Object.keys(CreatedSandboxSchema.shape).sort());
    const exec = op("/v1/sandboxes/{id}/exec", "post");
    expect(
      Object.keys(exec.responses["200"]?.content?.["application/json"]?.schema.properties ?? {}).sort(),
    ).toEqual(Object.keys(ExecResultSchema.shape).sort());
  });

  it("refuses missing, malformed, unknown and revoked keys with 401", async () => {
    for (const key of [null, "nonsense", `wrn_${"0".repeat(40)}`]) {
      const res = await fx.as(key)<ErrorBody>("GET", "/v1/sandboxes");
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe("unauthenticated");
    }
    const created = await fx.as(fx.adminKey)<{ id: string; key: string }>("POST", "/v1/api-keys", {
      name: "short-lived",
    });
    expect((await fx.as(created.body.key)("GET", "/v1/sandboxes")).status).toBe(200);
    expect((await fx.as(fx.adminKey)("DELETE", `/v1/api-keys/${created.body.id}`)).status).toBe(204);
    expect((await fx.as(created.body.key)("GET", "/v1/sandboxes")).status).toBe(401);
  });

  it("accepts the key as Bearer, as X-API-Key, and in its e2b_ spelling", async () => {
    const viaHeader = await fetch(`${fx.url}/v1/sandboxes`, { headers: { "x-api-key": fx.adminKey } });
    expect(viaHeader.status).toBe(200);
    const e2b = e2bFormOfApiKey(fx.adminKey);
    expect(e2b).toMatch(/^e2b_[0-9a-f]{40}$/);
    expect((await fx.as(e2b)("GET", "/v1/sandboxes")).status).toBe(200);
  });

  it("shows a key once and stores only its hash and prefix", async () => {
    const created = await fx.as(fx.adminKey)<{ id: string; key: string; prefix: string }>(
      "POST",
      "/v1/api-keys",
      {
        name: "ci",
      },
    );
    expect(created.status).toBe(201);
    expect(created.body.key).toMatch(/^wrn_[0-9a-f]{40}$/);
    expect(created.body.key.startsWith(created.body.prefix)).toBe(true);
    const listed = await fx.as(fx.adminKey)<{ items: Record<string, unknown>[] }>("GET", "/v1/api-keys");
    const entry = listed.body.items.find((k) => k.id === created.body.id);
    expect(entry).toMatchObject({ name: "ci", prefix: created.body.prefix });
    expect(JSON.stringify(listed.body)).not.toContain(created.body.key);
    const row = await t.database.db
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", created.body.id)
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain(created.body.key.slice(4));
    expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("lets only the admin team create teams; a team sees only itself", async () => {
    const team = await fx.newTeam("acme");
    const denied = await fx.as(team.key)<ErrorBody>("POST", "/v1/teams", { name: "sneaky" });
    expect(denied.status).toBe(403);
    expect(denied.body.error.code).toBe("permission_denied");
    const mine = await fx.as(team.key)<{ items: { id: string }[] }>("GET", "/v1/teams");
    expect(mine.body.items.map((x) => x.id)).toEqual([team.teamId]);
    const renamed = await fx.as(team.key)<{ name: string }>("PATCH", `/v1/teams/${team.teamId}`, {
      name: "acme inc",
    });
    expect(renamed.body.name).toBe("acme inc");
  });

  it("adds, lists and removes team members", async () => {
    const team = await fx.newTeam("members");
    const api = fx.as(team.key);
    const added = await api<{ user_id: string; role: string }>("POST", `/v1/teams/${team.teamId}/members`, {
      email: "Ann@Example.com",
      role: "admin",
    });
    expect(added.status).toBe(201);
    expect(added.body.role).toBe("admin");
    const again = await api<ErrorBody>("POST", `/v1/teams/${team.teamId}/members`, {
      email: "ann@example.com",
    });
    expect(again.status).toBe(409);
    const bad = await api<ErrorBody>("POST", `/v1/teams/${team.teamId}/members`, { email: "not-an-email" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("email");
    const listed = await api<{ items: { email: string }[] }>("GET", `/v1/teams/${team.teamId}/members`);
    expect(listed.body.items.map((m) => m.email)).toEqual(["ann@example.com"]);
    expect((await api("DELETE", `/v1/teams/${team.teamId}/members/${added.body.user_id}`)).status).toBe(204);
    expect((await api("DELETE", `/v1/teams/${team.teamId}/members/${added.body.user_id}`)).status).toBe(404);
  });

  it("answers bad input with 400 naming the field, and leaves nothing half-made", async () => {
    const api = fx.as(fx.adminKey);
    const cases: [string, string, unknown, string][] = [
      ["POST", "/v1/sandboxes", { vcpus: 0 }, "vcpus"],
      ["POST", "/v1/sandboxes", { memory_mb: "lots" }, "memory_mb"],
      ["POST", "/v1/sandboxes", { timeout_sec: -1 }, "timeout_sec"],
      ["POST", "/v1/sandboxes", { env: { "1BAD": "x" } }, "env"],
      ["POST", "/v1/sandboxes", { metadata: { k: 5 } }, "metadata"],
      ["POST", "/v1/api-keys", {}, "name"],
      ["POST", "/v1/hosts", { name: "" }, "name"],
      ["POST", "/v1/snapshots", { sandbox_id: "x", name: "bad name!" }, "name"],
      ["POST", "/v1/channels", { name: "c", url: "ftp://x" }, "url"],
      ["POST", "/v1/channels", { name: "c", url: "http://x", events: ["nope"] }, "events"],
      ["GET", "/v1/sandboxes?limit=0", undefined, "limit"],
      ["GET", "/v1/sandboxes?state=sleeping", undefined, "state"],
      ["GET", "/v1/sandboxes?cursor=garbage", undefined, "cursor"],
    ];
    const before = await t.database.db.selectFrom("sandboxes").select("id").execute();
    for (const [method, path, body, field] of cases) {
      const res = await api<ErrorBody>(method, path, body);
      expect(res.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(400);
      expect(res.body.error.code).toBe("invalid_argument");
      expect(res.body.error.message).toContain(field);
    }
    const raw = await fetch(`${fx.url}/v1/sandboxes`, {
      method: "POST",
      headers: { authorization: `Bearer ${fx.adminKey}`, "content-type": "application/json" },
      body: "{not json",
    });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as ErrorBody).error.code).toBe("invalid_argument");
    const after = await t.database.db.selectFrom("sandboxes").select("id").execute();
    expect(after).toEqual(before);
  });

  it("answers 404 in the error shape for unknown routes and ids", async () => {
    const unknown = await fx.as(fx.adminKey)<ErrorBody>("GET", "/v1/nothing-here");
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ error: { code: "not_found", message: expect.any(String) } });
    const missing = await fx.as(fx.adminKey)<ErrorBody>("GET", "/v1/sandboxes/inope");
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe("not_found");
  });

  it("answers 503 no_capacity when no host can take a sandbox, with no row left", async () => {
    const res = await fx.as(fx.adminKey)<ErrorBody>("POST", "/v1/sandboxes", { template: "base" });
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe("no_capacity");
    expect(await t.database.db.selectFrom("sandboxes").select("id").execute()).toEqual([]);
  });

  it("creates hosts with a one-time registration token and refuses bad registrations", async () => {
    const api = fx.as(fx.adminKey);
    const created = await api<{ host: { id: string; state: string }; registration_token: string }>(
      "POST",
      "/v1/hosts",
      {
        name: "edge-1",
      },
    );
    expect(created.status).toBe(201);
    expect(created.body.host.state).toBe("pending");
    expect(created.body.registration_token).toMatch(/^wrnr_/);
    const wrongToken = await fx.as(null)<ErrorBody>("POST", "/v1/hosts/register", {
      token: `wrnr_${"0".repeat(40)}`,
      url: "http://127.0.0.1:1",
      agent_token: "x".repeat(32),
    });
    expect(wrongToken.status).toBe(401);
    // Nothing listens on port 1: the agent must answer Ping before the token is spent.
    const deadAgent = await fx.as(null)<ErrorBody>("POST", "/v1/hosts/register", {
      token: created.body.registration_token,
      url: "http://127.0.0.1:1",
      agent_token: "x".repeat(32),
    });
    expect(deadAgent.status).toBe(412);
    expect(deadAgent.body.error.code).toBe("failed_precondition");
    const token = await t.database.db
      .selectFrom("host_registration_tokens")
      .selectAll()
      .where("host_id", "=", created.body.host.id)
      .executeTakeFirstOrThrow();
    expect(token.used_at).toBeNull();
    const hosts = await api<{ items: { id: string }[] }>("GET", "/v1/hosts");
    expect(hosts.body.items.map((h) => h.id)).toContain(created.body.host.id);
    const heartbeat = await fx.as(`wrnh_${"0".repeat(40)}`)<ErrorBody>("POST", "/v1/hosts/heartbeat");
    expect(heartbeat.status).toBe(401);
    expect((await api("DELETE", `/v1/hosts/${created.body.host.id}`)).status).toBe(204);
    expect((await api("GET", `/v1/hosts/${created.body.host.id}`)).status).toBe(404);
  });

  it("only the admin team creates shared hosts", async () => {
    const team = await fx.newTeam("no-shared");
    const res = await fx.as(team.key)<ErrorBody>("POST", "/v1/hosts", { name: "x", shared: true });
    expect(res.status).toBe(403);
  });

  it("writes an audit row for every mutating action, with actor and result, paginated", async () => {
    const team = await fx.newTeam("audited");
    const api = fx.as(team.key);
    const key = await api<{ id: string }>("POST", "/v1/api-keys", { name: "one" });
    await api("DELETE", `/v1/api-keys/${key.body.id}`);
    await api("POST", "/v1/sandboxes", {});
    const page1 = await api<{ items: Record<string, unknown>[]; next_cursor: string | null }>(
      "GET",
      "/v1/audit-logs?limit=2",
    );
    expect(page1.body.items).toHaveLength(2);
    expect(page1.body.next_cursor).not.toBeNull();
    const page2 = await api<{ items: Record<string, unknown>[]; next_cursor: string | null }>(
      "GET",
      `/v1/audit-logs?limit=2&cursor=${page1.body.next_cursor}`,
    );
    const all = [...page1.body.items, ...page2.body.items];
    expect(all.map((e) => [e.action, e.result])).toEqual([
      ["api_key.create", "success"],
      ["api_key.revoke", "success"],
      ["sandbox.create", "failure"],
    ]);
    expect(all[0]).toMatchObject({
      actor_type: "api_key",
      resource_type: "api_key",
      resource_id: key.body.id,
    });
    expect(all[2]).toMatchObject({ error_code: "no_capacity" });
    expect(page2.body.next_cursor).toBeNull();

    // Newest first, paged towards older entries by the same cursors.
    type Page = { items: Record<string, unknown>[]; next_cursor: string | null };
    const newest = await api<Page>("GET", "/v1/audit-logs?limit=2&order=desc");
    const older = await api<Page>(
      "GET",
      `/v1/audit-logs?limit=2&order=desc&cursor=${newest.body.next_cursor}`,
    );
    expect([...newest.body.items, ...older.body.items].map((e) => e.action)).toEqual([
      "sandbox.create",
      "api_key.revoke",
      "api_key.create",
    ]);
    expect(older.body.next_cursor).toBeNull();
    const bad = await api("GET", "/v1/audit-logs?order=sideways");
    expect(bad.status).toBe(400);
  });
});
