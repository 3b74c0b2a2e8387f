import type { SandboxState } from "@wrenn/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type SandboxStateName = SandboxState;
type E2bError = { code: number; message: string };
type Listed = { sandboxID: string; state: string; metadata: Record<string, string>; templateID: string };

/**
 * The e2b-compatible routes without VMs: authentication, validation and error shapes,
 * state semantics over sandbox rows, list filters and pagination, and team scoping.
 */
describe("e2b-compatible API", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  let a: { teamId: string; key: string };
  let b: { teamId: string; key: string };
  let seq = 0;

  async function insertSandbox(
    teamId: string,
    fields: { state: SandboxStateName; metadata?: Record<string, string>; createdAt?: Date; id?: string },
  ): Promise<string> {
    seq += 1;
    const id = fields.id ?? `i${String(seq).padStart(19, "0")}`;
    await t.database.db
      .insertInto("sandboxes")
      .values({
        id,
        team_id: teamId,
        host_id: null,
        template: "base",
        snapshot_id: null,
        state: fields.state,
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
        timeout_sec: 300,
        metadata: JSON.stringify(fields.metadata ?? {}),
        envd_access_token: `token-of-${id}`,
        host_ip: null,
        error: null,
        expires_at: null,
        stopped_at: null,
        created_at: fields.createdAt ?? new Date(Date.UTC(2030, 0, 1, 0, 0, seq)),
      })
      .execute();
    return id;
  }

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, { config: { sandboxDomain: "wrenn.test" } });
    a = await fx.newTeam("team-a");
    b = await fx.newTeam("team-b");
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  it("refuses a missing or wrong key with 401 in e2b's shape", async () => {
    const none = await fx.as(null)<E2bError>("GET", "/v2/sandboxes");
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ code: 401, message: expect.stringMatching(/API key/) });
    const wrong = await fx.as(null)<E2bError>("GET", "/v2/sandboxes", undefined, {
      "x-api-key": `e2b_${"0".repeat(40)}`,
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.code).toBe(401);
  });

  it("accepts the key in its e2b_ form in X-API-Key", async () => {
    const res = await fx.as(null)<Listed[]>("GET", "/v2/sandboxes", undefined, {
      "x-api-key": a.key.replace(/^wrn_/, "e2b_"),
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual([]);
  });

  it.each([
    ["no templateID", {}, /templateID/],
    ["a bad env var name", { templateID: "base", envVars: { "1X": "y" } }, /envVars/],
    ["a timeout too long", { templateID: "base", timeout: 10 * 24 * 3600 }, /timeout/],
    ["metadata that is not strings", { templateID: "base", metadata: { a: 1 } }, /metadata/],
    ["mcp", { templateID: "base", mcp: { x: {} } }, /not supported.*mcp/],
    [
      "a relative volume mount path",
      { templateID: "base", volumeMounts: [{ name: "v", path: "v" }] },
      /mount path/,
    ],
    [
      "a malformed CIDR",
      { templateID: "base", network: { denyOut: ["10.0.0.0/33"] } },
      /bad_cidr: '10\.0\.0\.0\/33'/,
    ],
    [
      "a domain without deny-all",
      { templateID: "base", network: { allowOut: ["api.example.com"] } },
      /domain_needs_deny_all: .*api\.example\.com/,
    ],
    [
      "a domain in denyOut",
      { templateID: "base", network: { denyOut: ["example.com"] } },
      /domain_in_deny: .*example\.com/,
    ],
    [
      "a bad wildcard",
      { templateID: "base", allow_internet_access: false, network: { allowOut: ["api.*.com"] } },
      /bad_wildcard: 'api\.\*\.com'/,
    ],
    [
      "too many entries",
      { templateID: "base", network: { denyOut: Array.from({ length: 101 }, (_, i) => `1.1.${i}.0/24`) } },
      /too_many_entries/,
    ],
    [
      "an egress proxy",
      { templateID: "base", network: { egressProxy: { address: "p:1080" } } },
      /egressProxy is not supported/,
    ],
    [
      "egress rules",
      { templateID: "base", network: { rules: { "a.com": [{ transform: { headers: { a: "b" } } }] } } },
      /rules is not supported/,
    ],
    ["auto resume without auto pause", { templateID: "base", autoResume: { enabled: true } }, /auto resume/],
    [
      "auto resume with a filesystem-only timeout pause",
      { templateID: "base", autoPause: true, autoPauseMemory: false, autoResume: { enabled: true } },
      /autoResume cannot be combined/,
    ],
  ])("refuses a create with %s (400), leaving nothing", async (_name, body, message) => {
    const res = await fx.as(a.key)<E2bError>("POST", "/v2/sandboxes", body);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe(400);
    expect(res.body.message).toMatch(message);
    expect((await fx.as(a.key)<Listed[]>("GET", "/v2/sandboxes")).body).toEqual([]);
  });

  it("answers malformed JSON with 400 in e2b's shape", async () => {
    const res = await fetch(`${fx.url}/v2/sandboxes`, {
      method: "POST",
      headers: { "x-api-key": a.key, "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as E2bError).code).toBe(400);
  });

  it("answers 503 when no host can run it, and keeps no row", async () => {
    const res = await fx.as(a.key)<E2bError>("POST", "/v2/sandboxes", { templateID: "base" });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe(503);
    const rows = await t.database.db
      .selectFrom("sandboxes")
      .select("id")
      .where("team_id", "=", a.teamId)
      .execute();
    expect(rows).toEqual([]);
  });

  it("maps states: paused is paused, stopped is not found, pausing twice is 409", async () => {
    const paused = await insertSandbox(a.teamId, { state: "paused" });
    const stopped = await insertSandbox(a.teamId, { state: "stopped" });
    const asA = fx.as(a.key);
    const info = await asA<Listed & { envdAccessToken: string; domain: string }>(
      "GET",
      `/sandboxes/${paused}`,
    );
    expect(info.status).toBe(200);
    expect(info.body).toMatchObject({
      sandboxID: paused,
      state: "paused",
      templateID: "base",
      envdAccessToken: `token-of-${paused}`,
      domain: "wrenn.test",
    });
    expect((await asA<E2bError>("POST", `/sandboxes/${paused}/pause`, {})).body).toEqual({
      code: 409,
      message: expect.stringContaining("already paused"),
    });
    expect((await asA("GET", `/sandboxes/${paused}/metrics`)).body).toEqual([]);
    for (const [method, path, body] of [
      ["GET", `/sandboxes/${stopped}`, undefined],
      ["DELETE", `/sandboxes/${stopped}`, undefined],
      ["POST", `/sandboxes/${stopped}/pause`, {}],
      ["POST", `/v2/sandboxes/${stopped}/connect`, {}],
      ["POST", `/sandboxes/${stopped}/timeout`, { timeout: 60 }],
    ] as const) {
      const res = await asA<E2bError>(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.code).toBe(404);
    }
    // A filesystem-only pause of a paused sandbox is refused the same way.
    expect((await asA<E2bError>("POST", `/sandboxes/${paused}/pause`, { memory: false })).status).toBe(409);
  });

  it("shows the network policy in details; PUT network checks the policy before any host", async () => {
    const id = await insertSandbox(a.teamId, { state: "paused" });
    await t.database.db
      .updateTable("sandboxes")
      .set({
        network_policy: JSON.stringify({ allowOut: ["1.1.1.1/32"], denyOut: ["0.0.0.0/0"] }),
        traffic_access_token: "tok",
        mask_request_host: "localhost:$" + "{PORT}",
      })
      .where("id", "=", id)
      .execute();
    const info = await fx.as(a.key)<Record<string, unknown>>("GET", `/sandboxes/${id}`);
    expect(info.body).toMatchObject({
      allowInternetAccess: false,
      network: {
        allowOut: ["1.1.1.1/32"],
        denyOut: ["0.0.0.0/0"],
        allowPublicTraffic: false,
        maskRequestHost: "localhost:$" + "{PORT}",
      },
    });
    const bad = await fx.as(a.key)<E2bError>("PUT", `/sandboxes/${id}/network`, { denyOut: ["::/0"] });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/ipv6_unsupported: '::\/0'/);
    const proxy = await fx.as(a.key)<E2bError>("PUT", `/sandboxes/${id}/network`, {
      egressProxy: { address: "p:1080" },
    });
    expect(proxy.status).toBe(400);
    expect(proxy.body.message).toMatch(/egressProxy is not supported/);
    // A valid policy goes to the sandbox's host; this one has none.
    const noHost = await fx.as(a.key)<E2bError>("PUT", `/sandboxes/${id}/network`, { allowOut: [] });
    expect(noHost.status).toBe(503);
    const theirs = await fx.as(b.key)<E2bError>("PUT", `/sandboxes/${id}/network`, {});
    expect(theirs.status).toBe(404);
  });

  it("lists running and paused by default, filters by state and metadata, pages with X-Next-Token", async () => {
    const asB = fx.as(b.key);
    const ids = [
      await insertSandbox(b.teamId, { state: "running", metadata: { app: "x", user: "a b&c=d" } }),
      await insertSandbox(b.teamId, { state: "paused", metadata: { app: "x" } }),
      await insertSandbox(b.teamId, { state: "running", metadata: { app: "y" } }),
      await insertSandbox(b.teamId, { state: "stopped", metadata: { app: "x" } }),
    ];
    const all = await asB<Listed[]>("GET", "/v2/sandboxes");
    expect(all.body.map((s) => s.sandboxID)).toEqual([ids[2], ids[1], ids[0]]);
    const asc = await asB<Listed[]>("GET", "/v2/sandboxes?order=asc");
    expect(asc.body.map((s) => s.sandboxID)).toEqual([ids[0], ids[1], ids[2]]);
    const pausedOnly = await asB<Listed[]>("GET", "/v2/sandboxes?state=paused");
    expect(pausedOnly.body.map((s) => [s.sandboxID, s.state])).toEqual([[ids[1], "paused"]]);
    const both = await asB<Listed[]>("GET", "/v2/sandboxes?state=running,paused");
    expect(both.body).toHaveLength(3);
    // As the SDK encodes it: each key and value URI-encoded, then the whole as one parameter.
    const inner = new URLSearchParams({ app: "x", user: encodeURIComponent("a b&c=d") }).toString();
    const byMeta = await asB<Listed[]>("GET", `/v2/sandboxes?metadata=${encodeURIComponent(inner)}`);
    expect(byMeta.body.map((s) => s.sandboxID)).toEqual([ids[0]]);
    expect(byMeta.body[0]?.metadata).toEqual({ app: "x", user: "a b&c=d" });

    const first = await asB<Listed[]>("GET", "/v2/sandboxes?limit=2");
    expect(first.body.map((s) => s.sandboxID)).toEqual([ids[2], ids[1]]);
    const token = first.headers.get("x-next-token");
    expect(token).toBeTruthy();
    const second = await asB<Listed[]>(
      "GET",
      `/v2/sandboxes?limit=2&nextToken=${encodeURIComponent(token ?? "")}`,
    );
    expect(second.body.map((s) => s.sandboxID)).toEqual([ids[0]]);
    expect(second.headers.get("x-next-token")).toBeNull();

    expect((await asB<E2bError>("GET", "/v2/sandboxes?state=stopped")).status).toBe(400);
    expect((await asB<E2bError>("GET", "/v2/sandboxes?nextToken=garbage")).body.code).toBe(400);
    // Team A sees none of B's.
    const asA = await fx.as(a.key)<Listed[]>("GET", "/v2/sandboxes");
    for (const id of ids) expect(JSON.stringify(asA.body)).not.toContain(id);
  });

  it("answers 404 for another team's sandbox and snapshot on every route, touching nothing", async () => {
    const theirs = await insertSandbox(b.teamId, { state: "running" });
    const host = await fx.as(b.key)<{ host: { id: string } }>("POST", "/v1/hosts", { name: "b-host" });
    await t.database.db
      .insertInto("templates")
      .values({
        id: "tpl_b_e2b",
        team_id: b.teamId,
        name: "b-snap",
        kind: "snapshot",
        host_id: host.body.host.id,
        agent_name: "sb",
        source_sandbox_id: theirs,
        image: "base",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
      })
      .execute();
    const asA = fx.as(a.key);
    for (const [method, path, body] of [
      ["GET", `/sandboxes/${theirs}`, undefined],
      ["DELETE", `/sandboxes/${theirs}`, undefined],
      ["POST", `/sandboxes/${theirs}/timeout`, { timeout: 60 }],
      ["POST", `/sandboxes/${theirs}/refreshes`, {}],
      ["POST", `/sandboxes/${theirs}/pause`, {}],
      ["POST", `/sandboxes/${theirs}/connect`, {}],
      ["POST", `/v2/sandboxes/${theirs}/connect`, {}],
      ["GET", `/sandboxes/${theirs}/metrics`, undefined],
      ["POST", `/sandboxes/${theirs}/snapshots`, { name: "stolen" }],
      ["POST", `/sandboxes/${theirs}/fork`, { count: 1 }],
      ["DELETE", "/templates/b-snap", undefined],
    ] as const) {
      const res = await asA<E2bError>(method, path, body);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.code).toBe(404);
      expect(JSON.stringify(res.body)).not.toContain("token-of-");
    }
    expect((await asA<unknown[]>("GET", "/snapshots")).body).toEqual([]);
    // B's snapshot is no template of A's: it is never placed on B's host.
    expect([400, 503]).toContain(
      (await asA<E2bError>("POST", "/v2/sandboxes", { templateID: "b-snap" })).status,
    );
    const still = await fx.as(b.key)<Listed>("GET", `/sandboxes/${theirs}`);
    expect(still.body.state).toBe("running");
    const snaps = await fx.as(b.key)<{ snapshotID: string }[]>("GET", "/snapshots");
    expect(snaps.body).toEqual([{ snapshotID: "b-snap", names: ["b-snap"] }]);
  });

  it("serves the caller's own team metrics in E2B's shapes, and refuses another team's with 403", async () => {
    const at = (sec: number) => new Date(Date.UTC(2031, 0, 1, 0, 0, sec));
    await t.database.db
      .insertInto("team_metrics")
      .values([
        {
          team_id: a.teamId,
          ts: at(0),
          running_sandboxes: 1,
          vcpus: 1,
          memory_mib: 512,
          sandbox_start_rate: 0.5,
        },
        { team_id: a.teamId, ts: at(10), running_sandboxes: 3, vcpus: 3, memory_mib: 1536 },
        { team_id: a.teamId, ts: at(20), running_sandboxes: 0, vcpus: 0, memory_mib: 0 },
        { team_id: b.teamId, ts: at(10), running_sandboxes: 9, vcpus: 9, memory_mib: 9 },
      ])
      .execute();
    const asA = fx.as(a.key);
    const start = at(0).getTime() / 1000;
    const series = await asA<unknown[]>("GET", `/teams/${a.teamId}/metrics?start=${start}&end=${start + 10}`);
    expect(series.status).toBe(200);
    expect(series.body).toEqual([
      { timestamp: at(0).toISOString(), timestampUnix: start, concurrentSandboxes: 1, sandboxStartRate: 0.5 },
      {
        timestamp: at(10).toISOString(),
        timestampUnix: start + 10,
        concurrentSandboxes: 3,
        sandboxStartRate: 0,
      },
    ]);
    const max = await asA("GET", `/teams/${a.teamId}/metrics/max?metric=concurrent_sandboxes&start=${start}`);
    expect(max.body).toEqual({ timestamp: at(10).toISOString(), timestampUnix: start + 10, value: 3 });
    const rate = await asA("GET", `/teams/${a.teamId}/metrics/max?metric=sandbox_start_rate&start=${start}`);
    expect(rate.body).toMatchObject({ timestampUnix: start, value: 0.5 });
    expect((await asA<E2bError>("GET", `/teams/${a.teamId}/metrics/max?metric=nope`)).status).toBe(400);
    for (const path of [
      `/teams/${b.teamId}/metrics`,
      `/teams/${b.teamId}/metrics/max?metric=concurrent_sandboxes`,
    ]) {
      const res = await asA<E2bError>("GET", path);
      expect(res.status, path).toBe(403);
      expect(res.body.code).toBe(403);
    }
    // The native route: the same rows, the caller's team only.
    const v1 = await asA<{ items: { running_sandboxes: number }[] }>(
      "GET",
      `/v1/team/metrics?start=${start}`,
    );
    expect(v1.body.items.map((r) => r.running_sandboxes)).toEqual([1, 3, 0]);
  });

  it("leaves the native API's error shape alone", async () => {
    const res = await fx.as(a.key)<{ error: { code: string } }>("GET", "/v1/sandboxes/nope");
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe("not_found");
  });

  it("says why a signed file URL made under E2B_SANDBOX_URL cannot reach a sandbox", async () => {
    const signed = await fetch(`${fx.url}/files?path=%2Fhome%2Fuser%2Fa.txt&signature=v1_abc`);
    expect(signed.status).toBe(404);
    const body = (await signed.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe("not_found");
    expect(body.error.message).toMatch(/by host name \(49983-<sandbox id>\.<domain>\).*E2B_DOMAIN/);
    const plain = (await (await fetch(`${fx.url}/files?path=x`)).json()) as { error: { message: string } };
    expect(plain.error.message).toBe("no route GET /files");
  });
});
