import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decideRefresh, derivePairFrom, newDeriveKey } from "../src/auth/host-refresh.js";
import { Scheduler } from "../src/scheduler/scheduler.js";
import { issueInitialCredentials } from "../src/services/host-enrolment.js";
import { type AgentPing, applyPing } from "../src/services/host-ping.js";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { DATABASE_KINDS, openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

type ErrorBody = { error: { code: string; message: string } };
type Pair = { host_id: string; credential: string; expires_at: string; refresh_token: string };

describe("refresh rotation decision", () => {
  const facts = (p?: boolean, s?: boolean, credUsed = false, revoked = false) => ({
    presented: p === undefined ? undefined : { used: p },
    successor: s === undefined ? undefined : { used: s },
    successorCredentialUsed: credUsed,
    hostRevoked: revoked,
  });
  it("rotates the current token, replays the previous one while its successor is untouched, else reuse", () => {
    expect(decideRefresh(facts())).toBe("unknown");
    expect(decideRefresh(facts(false))).toBe("rotate");
    expect(decideRefresh(facts(true, false))).toBe("replay");
    expect(decideRefresh(facts(true, false, true))).toBe("reuse");
    expect(decideRefresh(facts(true, true))).toBe("reuse");
    expect(decideRefresh(facts(true))).toBe("reuse");
    expect(decideRefresh(facts(false, undefined, false, true))).toBe("revoked");
  });
  it("derives the same pair from the same spent token and key; another token or key gives another", () => {
    const key = newDeriveKey();
    const token = `wrnf_${"1".repeat(40)}`;
    const a = derivePairFrom(key, token);
    expect(derivePairFrom(key, token)).toEqual(a);
    expect(a.credential.value).toMatch(/^wrnh_[0-9a-f]{40}$/);
    expect(a.refreshToken.value).toMatch(/^wrnf_[0-9a-f]{40}$/);
    expect(derivePairFrom(key, `wrnf_${"2".repeat(40)}`).credential.value).not.toBe(a.credential.value);
    // Without the control plane's key the token alone does not give the next pair.
    expect(derivePairFrom(newDeriveKey(), token).credential.value).not.toBe(a.credential.value);
    expect(derivePairFrom(token, token).credential.value).not.toBe(a.credential.value);
  });
});

/** Host credentials, tags and draining without an agent (tests/e2e/enrolment.test.ts has the real one). */
describe.each(DATABASE_KINDS)("host enrolment, refresh, tags and draining (%s)", (kind) => {
  let t: TestDatabase;
  let fx: CpFixture;
  let certDir: string;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
    fx = await startControlPlane(t.database, { config: { hostCredentialTtlSec: 60, pingTimeoutMs: 1000 } });
    certDir = mkdtempSync(join(tmpdir(), "wrenn-enrol-cert-"));
    execFileSync(
      "openssl",
      [
        ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
        ...[
          "-keyout",
          join(certDir, "k.pem"),
          "-out",
          join(certDir, "c.pem"),
          "-days",
          "1",
          "-subj",
          "/CN=t",
        ],
        ...["-addext", "subjectAltName=IP:127.0.0.1"],
      ],
      { stdio: "ignore" },
    );
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  async function newHost(name: string): Promise<{ id: string; token: string }> {
    const res = await fx.as(fx.adminKey)<{ host: { id: string }; registration_token: string }>(
      "POST",
      "/v1/hosts",
      {
        name,
        shared: true,
      },
    );
    expect(res.status).toBe(201);
    return { id: res.body.host.id, token: res.body.registration_token };
  }

  async function enrolledHost(name: string): Promise<{ id: string; refresh: string; credential: string }> {
    const { id } = await newHost(name);
    const issued = await issueInitialCredentials(t.database.db, id, new Date(), 60);
    return { id, refresh: issued.refreshToken, credential: issued.credential };
  }

  const refresh = (token: string) =>
    fx.as(null)<Pair & ErrorBody>("POST", "/v1/hosts/token", { refresh_token: token });
  const heartbeat = (credential: string) => fx.as(credential)<ErrorBody>("POST", "/v1/hosts/heartbeat");
  const hostRow = (id: string) =>
    t.database.db.selectFrom("hosts").selectAll().where("id", "=", id).executeTakeFirstOrThrow();

  it("rotates, answers a replay of the previous token with the same pair, and revokes on reuse", async () => {
    const h = await enrolledHost("rot-1");
    const first = await refresh(h.refresh);
    expect(first.status).toBe(200);
    expect(first.body.refresh_token).not.toBe(h.refresh);
    expect(first.body.host_id).toBe(h.id);
    // The old credential no longer works; the new one does.
    expect((await heartbeat(h.credential)).status).toBe(401);
    // An agent that crashed before keeping the pair presents the previous token again.
    const replay = await refresh(h.refresh);
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    expect((await heartbeat(first.body.credential)).status).toBe(200);
    expect((await hostRow(h.id)).agent_seen_at).not.toBeNull();
    // The new credential was used: the previous token again is someone else's copy.
    const reuse = await refresh(h.refresh);
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe("refresh_token_reused");
    const row = await hostRow(h.id);
    expect(row.state).toBe("revoked");
    expect(row.credential_hash).toBeNull();
    expect((await heartbeat(first.body.credential)).status).toBe(401);
    const current = await refresh(first.body.refresh_token);
    expect(current.status).toBe(403);
    expect(current.body.error.code).toBe("host_revoked");
    const audit = await t.database.db
      .selectFrom("audit_logs")
      .selectAll()
      .where("action", "=", "host.credential_reuse")
      .where("resource_id", "=", h.id)
      .execute();
    expect(audit).toHaveLength(1);
    const listed = await fx.as(fx.adminKey)<{ state: string }>("GET", `/v1/hosts/${h.id}`);
    expect(listed.body.state).toBe("revoked");
  });

  it("a token two rotations old is reuse; an unknown one is refused without revoking anything", async () => {
    const h = await enrolledHost("rot-2");
    const one = await refresh(h.refresh);
    const two = await refresh(one.body.refresh_token);
    expect(two.status).toBe(200);
    const bogus = await refresh(`wrnf_${"0".repeat(40)}`);
    expect(bogus.status).toBe(401);
    expect(bogus.body.error.code).toBe("unauthenticated");
    expect((await hostRow(h.id)).state).not.toBe("revoked");
    const old = await refresh(h.refresh);
    expect(old.body.error.code).toBe("refresh_token_reused");
    expect((await hostRow(h.id)).state).toBe("revoked");
  });

  it("a heartbeat reporting a certificate other than the pinned one is flagged", async () => {
    const h = await enrolledHost("pin-1");
    await t.database.db
      .updateTable("hosts")
      .set({ cert_fingerprint: "AA:BB" })
      .where("id", "=", h.id)
      .execute();
    const beat = (fp: string) =>
      fx.as(h.credential)<{ cert_pinned: boolean }>("POST", "/v1/hosts/heartbeat", { cert_fingerprint: fp });
    expect((await beat("AA:BB")).body.cert_pinned).toBe(true);
    expect((await beat("CC:DD")).body.cert_pinned).toBe(false);
    expect(
      (await fx.as(fx.adminKey)<{ cert_mismatch: boolean }>("GET", `/v1/hosts/${h.id}`)).body.cert_mismatch,
    ).toBe(true);
    expect((await beat("AA:BB")).body.cert_pinned).toBe(true);
  });

  it("an expired access credential is refused (the agent refreshes)", async () => {
    const h = await enrolledHost("exp-1");
    expect((await heartbeat(h.credential)).status).toBe(200);
    await t.database.db
      .updateTable("hosts")
      .set({ credential_expires_at: new Date(Date.now() - 1000) })
      .where("id", "=", h.id)
      .execute();
    const res = await heartbeat(h.credential);
    expect(res.status).toBe(401);
    expect(res.body.error.message).toMatch(/expired/);
  });

  it("enrolment refuses a bad token, a plain-http URL and a bad certificate, and spends nothing when the Ping fails", async () => {
    const { id, token } = await newHost("enrol-neg");
    const certPem = readFileSync(join(certDir, "c.pem"), "utf8");
    const enrol = (body: Record<string, unknown>) =>
      fx.as(null)<ErrorBody>("POST", "/v1/hosts/enrol", {
        token,
        url: "https://127.0.0.1:1",
        agent_token: "x".repeat(32),
        cert_pem: certPem,
        ...body,
      });
    const before = await hostRow(id);
    const bogus = await enrol({ token: `wrnr_${"0".repeat(40)}` });
    expect(bogus.status).toBe(401);
    expect(bogus.body.error.code).toBe("registration_token_invalid");
    expect((await enrol({ url: "http://127.0.0.1:1" })).status).toBe(400);
    expect(
      (await enrol({ cert_pem: `-----BEGIN CERTIFICATE-----\n${"A".repeat(80)}\n-----END CERTIFICATE-----` }))
        .body.error.code,
    ).toBe("invalid_argument");
    // An expired token is refused like a bogus one, before anything is dialled.
    const { id: staleId, token: stale } = await newHost("enrol-stale");
    await t.database.db
      .updateTable("host_registration_tokens")
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where("host_id", "=", staleId)
      .execute();
    expect((await enrol({ token: stale })).body.error.code).toBe("registration_token_invalid");
    const dead = await enrol({});
    expect(dead.status).toBe(412);
    expect(dead.body.error.code).toBe("failed_precondition");
    expect(await hostRow(id)).toEqual(before);
    const tokenRow = await t.database.db
      .selectFrom("host_registration_tokens")
      .selectAll()
      .where("host_id", "=", id)
      .executeTakeFirstOrThrow();
    expect(tokenRow.used_at).toBeNull();
  });

  it("places by tags (jsonb containment) and never on a draining host", async () => {
    const db = t.database.db;
    const a = await newHost("tag-a");
    const b = await newHost("tag-b");
    for (const [h, tags] of [
      [a, { zone: "a", disk: "ssd" }],
      [b, { zone: "b", disk: "ssd" }],
    ] as const) {
      const patched = await fx.as(fx.adminKey)<{ tags: Record<string, string> }>(
        "PATCH",
        `/v1/hosts/${h.id}`,
        { tags },
      );
      expect(patched.status).toBe(200);
      expect(patched.body.tags).toEqual(tags);
      await db
        .updateTable("hosts")
        .set({ state: "up", capacity_vcpus: 8, capacity_memory_mib: 8192, capacity_disk_mib: 65536 })
        .where("id", "=", h.id)
        .execute();
    }
    const scheduler = new Scheduler({ pausedWeight: 0.25 });
    const resources = { vcpus: 1, memoryMiB: 512, diskMiB: 1024 };
    const place = (extra: Record<string, unknown>) =>
      db.transaction().execute((tx) => scheduler.place(tx, { teamId: fx.adminTeamId, resources, ...extra }));
    expect((await place({ requiredTags: { zone: "b" } })).id).toBe(b.id);
    expect((await place({ requiredTags: { zone: "a", disk: "ssd" } })).id).toBe(a.id);
    await expect(place({ requiredTags: { zone: "c" } })).rejects.toMatchObject({
      code: "no_capacity",
      message: expect.stringContaining("zone=c"),
    });
    const drained = await fx.as(fx.adminKey)<{ draining: boolean }>("PATCH", `/v1/hosts/${b.id}`, {
      draining: true,
    });
    expect(drained.body.draining).toBe(true);
    await expect(place({ requiredTags: { zone: "b" } })).rejects.toMatchObject({ code: "no_capacity" });
    await expect(place({ requiredHostId: b.id })).rejects.toMatchObject({ code: "host_draining" });
    await fx.as(fx.adminKey)("PATCH", `/v1/hosts/${b.id}`, { draining: false });
    expect((await place({ requiredTags: { zone: "b" } })).id).toBe(b.id);
    // Leave no up host behind for the other tests of this file.
    await db.updateTable("hosts").set({ state: "unreachable" }).where("id", "in", [a.id, b.id]).execute();
  });

  it("validates PATCH /v1/hosts/{id}: tag shapes, an empty body, and who may change a shared host", async () => {
    const h = await newHost("patch-v");
    const api = fx.as(fx.adminKey);
    expect((await api<ErrorBody>("PATCH", `/v1/hosts/${h.id}`, {})).status).toBe(400);
    expect((await api<ErrorBody>("PATCH", `/v1/hosts/${h.id}`, { tags: { "bad key!": "x" } })).status).toBe(
      400,
    );
    expect((await api<ErrorBody>("PATCH", `/v1/hosts/${h.id}`, { tags: { zone: 3 } })).status).toBe(400);
    const team = await fx.newTeam("patch-other");
    expect((await fx.as(team.key)<ErrorBody>("PATCH", `/v1/hosts/${h.id}`, { draining: true })).status).toBe(
      404,
    );
    const doc = await fx.as(null)<{ paths: Record<string, Record<string, unknown>> }>("GET", "/openapi.json");
    expect(doc.body.paths["/v1/hosts/{id}"]).toHaveProperty("patch");
    expect(doc.body.paths["/v1/hosts/enrol"]).toHaveProperty("post");
    expect(doc.body.paths["/v1/hosts/token"]).toHaveProperty("post");
  });
  it("lists a new image as one base template however many Pings report it at once", async () => {
    const [a, b] = [await newHost("ping-a"), await newHost("ping-b")];
    const image = `img-${kind}-${Date.now()}`;
    // The fields applyPing reads, as an agent's Ping answers them.
    const ping = {
      hostId: "agent",
      version: "t",
      vmm: "qemu",
      accel: "tcg",
      sandboxCount: 0,
      images: [image],
      trafficPort: 0,
    } as unknown as AgentPing;
    await Promise.all([a.id, b.id, a.id, b.id].map((id) => applyPing(t.database.db, id, ping, new Date())));
    const rows = await t.database.db
      .selectFrom("templates")
      .select("id")
      .where("name", "=", image)
      .where("kind", "=", "base")
      .execute();
    expect(rows).toHaveLength(1);
    // The database itself refuses a second one (a race the Pings above may not hit on PGlite).
    const again = t.database.db
      .insertInto("templates")
      .values({
        id: `tpl_dup${Date.now()}`,
        team_id: null,
        name: image,
        kind: "base",
        host_id: null,
        agent_name: image,
        source_sandbox_id: null,
        image: null,
        vcpus: null,
        memory_mib: null,
        disk_mib: null,
      })
      .execute();
    await expect(again).rejects.toThrow(/templates_base_name|unique/i);
  });
});
