import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type ErrorBody = { error: { code: string; message: string } };

/**
 * Every route that names a resource, called by team A with team B's ids: each answers 404
 * (never B's data, never a different error that would reveal the resource exists), and
 * B's resources are untouched afterwards. A route added without a row here fails the
 * coverage check at the end.
 */
describe("team scoping: a key of team A never reaches team B's resources", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  let a: { teamId: string; key: string };
  let b: { teamId: string; key: string };
  const ids = {
    sandbox: "ibsandbox000000000000",
    key: "",
    host: "",
    snapshot: "b-snap",
    channel: "",
    member: "",
    invitation: "",
  };

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database);
    a = await fx.newTeam("team-a");
    b = await fx.newTeam("team-b");
    const asB = fx.as(b.key);
    ids.key = (await asB<{ id: string }>("POST", "/v1/api-keys", { name: "b-key" })).body.id;
    ids.host = (await asB<{ host: { id: string } }>("POST", "/v1/hosts", { name: "b-host" })).body.host.id;
    ids.channel = (
      await asB<{ id: string }>("POST", "/v1/channels", { name: "b", url: "http://127.0.0.1:9/hook" })
    ).body.id;
    ids.member = (
      await asB<{ user_id: string }>("POST", `/v1/teams/${b.teamId}/members`, { email: "bob@example.com" })
    ).body.user_id;
    ids.invitation = (
      await asB<{ id: string }>("POST", "/v1/team/invitations", { email: "carol@example.com" })
    ).body.id;
    // B's running sandbox and snapshot, as rows: the routes must refuse A before any host is asked.
    await t.database.db
      .insertInto("sandboxes")
      .values({
        id: ids.sandbox,
        team_id: b.teamId,
        host_id: ids.host,
        template: "base",
        snapshot_id: null,
        state: "running",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
        timeout_sec: 300,
        metadata: JSON.stringify({ owner: "b" }),
        envd_access_token: "secret-of-b",
        host_ip: null,
        error: null,
        expires_at: null,
        stopped_at: null,
      })
      .execute();
    await t.database.db
      .insertInto("templates")
      .values({
        id: "tpl_b",
        team_id: b.teamId,
        name: ids.snapshot,
        kind: "snapshot",
        host_id: ids.host,
        agent_name: "sb",
        source_sandbox_id: ids.sandbox,
        image: "base",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
      })
      .execute();
    // B's volume.
    await t.database.db
      .insertInto("volumes")
      .values({
        id: "vol_b",
        team_id: b.teamId,
        name: "b-volume",
        host_id: ids.host,
        size_mib: 64,
        content_token: "wvt_b",
      })
      .execute();
    // B's built template and its build.
    await t.database.db
      .insertInto("templates")
      .values({
        id: "tpl_bb",
        team_id: b.teamId,
        name: "b-built",
        kind: "built",
        host_id: null,
        agent_name: null,
        source_sandbox_id: null,
        image: "base",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
      })
      .execute();
    await t.database.db
      .insertInto("template_builds")
      .values({
        id: "bld_b",
        template_id: "tpl_bb",
        team_id: b.teamId,
        status: "ready",
        spec: JSON.stringify({ steps: [] }),
        tags: "[]",
        vcpus: 1,
        memory_mib: 512,
        disk_mib: 2048,
      })
      .execute();
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  /** Paths with placeholders for team B's ids, filled in once they exist. */
  const cases: [method: string, path: string, body?: unknown][] = [
    ["GET", "/v1/sandboxes/{sandbox}"],
    ["DELETE", "/v1/sandboxes/{sandbox}"],
    ["POST", "/v1/sandboxes/{sandbox}/ping"],
    ["POST", "/v1/sandboxes/{sandbox}/timeout", { timeout_sec: 60 }],
    ["PUT", "/v1/sandboxes/{sandbox}/network", { deny_out: ["1.2.3.4"] }],
    ["POST", "/v1/sandboxes/{sandbox}/pause"],
    ["POST", "/v1/sandboxes/{sandbox}/resume", {}],
    ["POST", "/v1/sandboxes/{sandbox}/fork", { count: 1 }],
    ["GET", "/v1/sandboxes/{sandbox}/metrics"],
    ["GET", "/v1/sandboxes/{sandbox}/metrics/current"],
    ["POST", "/v1/sandboxes/{sandbox}/exec", { command: "id" }],
    ["POST", "/v1/sandboxes/{sandbox}/processes", { command: "sleep 1" }],
    ["GET", "/v1/sandboxes/{sandbox}/processes"],
    ["DELETE", "/v1/sandboxes/{sandbox}/processes/1"],
    ["PUT", "/v1/sandboxes/{sandbox}/files?path=/tmp/x", "raw"],
    ["GET", "/v1/sandboxes/{sandbox}/files?path=/etc/hostname"],
    ["DELETE", "/v1/sandboxes/{sandbox}/files?path=/tmp/x"],
    ["GET", "/v1/sandboxes/{sandbox}/files/list?path=/"],
    ["POST", "/v1/sandboxes/{sandbox}/files/mkdir", { path: "/tmp/d" }],
    ["POST", "/v1/snapshots", { sandbox_id: "{sandbox}", name: "stolen" }],
    ["GET", "/v1/snapshots/{snapshot}"],
    ["DELETE", "/v1/snapshots/{snapshot}"],
    ["GET", "/v1/volumes/vol_b"],
    ["DELETE", "/v1/volumes/vol_b"],
    ["GET", "/v1/templates/b-built"],
    ["DELETE", "/v1/templates/b-built"],
    ["GET", "/v1/templates/b-built/builds"],
    ["GET", "/v1/builds/bld_b"],
    ["GET", "/v1/builds/bld_b/logs"],
    ["GET", "/v1/api-keys/{key}"],
    ["DELETE", "/v1/api-keys/{key}"],
    ["GET", "/v1/hosts/{host}"],
    ["PATCH", "/v1/hosts/{host}", { draining: true }],
    ["DELETE", "/v1/hosts/{host}"],
    ["GET", "/v1/teams/{team}"],
    ["PATCH", "/v1/teams/{team}", { name: "taken over" }],
    ["GET", "/v1/teams/{team}/members"],
    ["POST", "/v1/teams/{team}/members", { email: "mallory@example.com" }],
    ["DELETE", "/v1/teams/{team}/members/usr_x"],
    ["PATCH", "/v1/team/members/{member}", { role: "admin" }],
    ["DELETE", "/v1/team/members/{member}"],
    ["DELETE", "/v1/team/invitations/{invitation}"],
    ["GET", "/v1/channels/{channel}"],
    ["DELETE", "/v1/channels/{channel}"],
    ["GET", "/v1/channels/{channel}/deliveries"],
  ];

  const fill = (text: string): string =>
    text
      .replace("{sandbox}", ids.sandbox)
      .replace("{snapshot}", ids.snapshot)
      .replace("{key}", ids.key)
      .replace("{host}", ids.host)
      .replace("{team}", b.teamId)
      .replace("{channel}", ids.channel)
      .replace("{member}", ids.member)
      .replace("{invitation}", ids.invitation);

  it.each(cases.map((c) => [`${c[0]} ${c[1]}`, c] as const))(
    "%s → 404",
    async (_name, [method, path, body]) => {
      const url = `${fx.url}${fill(path)}`;
      const res =
        body === "raw"
          ? await fetch(url, {
              method,
              headers: { authorization: `Bearer ${a.key}`, "content-type": "application/octet-stream" },
              body: "data",
            })
          : await fetch(url, {
              method,
              headers: {
                authorization: `Bearer ${a.key}`,
                ...(body !== undefined ? { "content-type": "application/json" } : {}),
              },
              body: body === undefined ? undefined : fill(JSON.stringify(body)),
            });
      const parsed = (await res.json()) as ErrorBody;
      expect(res.status).toBe(404);
      expect(parsed.error.code).toBe("not_found");
      expect(JSON.stringify(parsed)).not.toContain("secret-of-b");
    },
  );

  it("lists show none of team B's resources", async () => {
    const asA = fx.as(a.key);
    for (const path of [
      "/v1/sandboxes",
      "/v1/snapshots",
      "/v1/api-keys",
      "/v1/hosts",
      "/v1/channels",
      "/v1/teams",
      "/v1/audit-logs",
      "/v1/templates",
      "/v1/team/members",
      "/v1/team/invitations",
    ]) {
      const res = await asA<Record<string, unknown>>("GET", path);
      expect(res.status, path).toBe(200);
      const text = JSON.stringify(res.body);
      // A's own audit log records the ids A typed in its refused requests; nothing of B's beyond that.
      const secretIds =
        path === "/v1/audit-logs"
          ? [ids.host, ids.channel]
          : [ids.sandbox, ids.key, ids.host, ids.snapshot, ids.channel, b.teamId, ids.member, ids.invitation];
      for (const id of secretIds) {
        expect(text, `${path} shows ${id}`).not.toContain(id);
      }
    }
  });

  it("A's audit log holds only A's own (refused) actions", async () => {
    const res = await fx.as(a.key)<{ items: { actor_id: string; result: string }[] }>(
      "GET",
      "/v1/audit-logs?limit=200",
    );
    const aKeys = (await fx.as(a.key)<{ items: { id: string }[] }>("GET", "/v1/api-keys")).body.items.map(
      (k) => k.id,
    );
    for (const row of res.body.items) {
      expect(aKeys).toContain(row.actor_id);
      expect(row.result).toBe("failure");
    }
  });

  it("left team B's resources as they were", async () => {
    const asB = fx.as(b.key);
    expect((await asB<{ state: string }>("GET", `/v1/sandboxes/${ids.sandbox}`)).body.state).toBe("running");
    expect(
      (await asB<{ revoked_at: string | null }>("GET", `/v1/api-keys/${ids.key}`)).body.revoked_at,
    ).toBeNull();
    expect((await asB("GET", `/v1/hosts/${ids.host}`)).status).toBe(200);
    expect((await asB("GET", `/v1/snapshots/${ids.snapshot}`)).status).toBe(200);
    expect((await asB("GET", `/v1/channels/${ids.channel}`)).status).toBe(200);
    expect((await asB<{ name: string }>("GET", `/v1/teams/${b.teamId}`)).body.name).toBe("team-b");
    const members = (await asB<{ items: { user_id: string; role: string }[] }>("GET", "/v1/team/members"))
      .body;
    expect(members.items).toContainEqual(expect.objectContaining({ user_id: ids.member, role: "member" }));
    const invitations = (await asB<{ items: { id: string }[] }>("GET", "/v1/team/invitations")).body;
    expect(invitations.items.map((i) => i.id)).toContain(ids.invitation);
  });

  it("covers every route that takes a resource id", async () => {
    const doc = (await (await fetch(`${fx.url}/openapi.json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const covered = new Set(
      cases.map(([method, path]) => {
        const p = (path.split("?")[0] ?? "")
          .replace(/\{(sandbox|key|host|team|channel|invitation)\}/, "{id}")
          .replace("{member}", "{userId}")
          .replace("/processes/1", "/processes/{process}")
          .replace("/members/usr_x", "/members/{user_id}")
          .replace("{snapshot}", "{name}")
          .replace("/templates/b-built", "/templates/{name}")
          .replace("/builds/bld_b", "/builds/{id}")
          .replace("/volumes/vol_b", "/volumes/{id}");
        return `${method} ${p}`;
      }),
    );
    const needing = Object.entries(doc.paths).flatMap(([path, item]) =>
      Object.keys(item)
        .map((m) => `${m.toUpperCase()} ${path}`)
        // Copy-step archives are named by their content inside each team's own store: a hash
        // is not another team's resource (A asking for B's hash sees only A's store).
        .filter(
          (op) => (op.includes("{") && !op.includes("/v1/template-files/")) || op === "POST /v1/snapshots",
        ),
    );
    expect(needing.filter((op) => !covered.has(op))).toEqual([]);
  });
});
