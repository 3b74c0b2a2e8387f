import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ControlPlane, createControlPlane, type Worker } from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AutoResumer } from "../src/proxy/auto-resume.js";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

/**
 * Two control-plane replicas on one PostgreSQL database, workers on: each leader worker runs
 * on one replica, leadership moves when its holder dies, a live replica's builds survive the
 * other's start, and events published on one reach the other's event stream.
 */

const RENEW_MS = 100;
const TTL_MS = 1000;
const config = {
  leaseRenewIntervalMs: RENEW_MS,
  leaseTtlMs: TTL_MS,
  heartbeatIntervalMs: 60_000,
  signinMaxFailuresPerEmail: 3,
  metricsSampleMs: 200,
  // Copy-step archives live on storage every replica shares.
  templateFilesDir: mkdtempSync(join(tmpdir(), "wrenn-replicas-files-")),
};
const logger = () => (process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger());

/** A worker that counts its ticks per replica (the effect that shows who runs it). */
function counterExtension(counts: Map<string, number>, replica: string) {
  const worker: Worker = {
    name: "test-counter",
    intervalMs: 50,
    tick: async () => void counts.set(replica, (counts.get(replica) ?? 0) + 1),
  };
  return {
    name: `counter-${replica}`,
    register: async (api: { worker(w: Worker): void }) => api.worker(worker),
  };
}

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** An open `GET /v1/events` stream: the events received so far, in order. */
async function openEventStream(url: string, key: string) {
  const controller = new AbortController();
  const res = await fetch(`${url}/v1/events`, {
    headers: { authorization: `Bearer ${key}` },
    signal: controller.signal,
  });
  expect(res.status).toBe(200);
  const received: { id: string; type: string; data: Record<string, unknown> }[] = [];
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  void (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let end = buffered.indexOf("\n\n");
        while (end >= 0) {
          const frame = buffered.slice(0, end);
          buffered = buffered.slice(end + 2);
          const data = frame.split("\n").find((l) => l.startsWith("data: "));
          if (data) received.push(JSON.parse(data.slice(6)));
          end = buffered.indexOf("\n\n");
        }
      }
    } catch {
      // aborted
    }
  })();
  return { received, close: () => controller.abort() };
}

describe("replicas on one PostgreSQL", () => {
  let t: TestDatabase;
  let a: CpFixture;
  const extra: ControlPlane[] = [];
  const counts = new Map<string, number>();

  const startReplica = async (name: string): Promise<ControlPlane> => {
    const cp = await createControlPlane({
      config: { port: 0, pgliteDir: "memory", ...config },
      database: t.database,
      logger: logger(),
      extensions: [counterExtension(counts, name)],
      workers: true,
    });
    await cp.start();
    extra.push(cp);
    return cp;
  };

  const leaseRows = async () =>
    (
      await sql<{ name: string; holder: string; fence: string }>`SELECT name, holder, fence FROM worker_leases
        WHERE expires_at > now() ORDER BY name`.execute(t.database.db)
    ).rows;

  beforeAll(async () => {
    t = await openTestDatabase("postgres");
    a = await startControlPlane(t.database, {
      config,
      workers: true,
      extensions: [counterExtension(counts, "a")],
    });
  }, 60_000);

  afterAll(async () => {
    for (const cp of extra) await cp.stop().catch(() => undefined);
    await a?.close().catch(() => undefined);
    await t?.dispose();
    rmSync(config.templateFilesDir, { recursive: true, force: true });
  });

  it("runs each leader worker on one replica, and moves it when the holder dies", async () => {
    await until("A holds every lease", () => a.cp.leases().includes("test-counter"));
    const b = await startReplica("b");
    await new Promise((r) => setTimeout(r, TTL_MS * 2));
    const rows = await leaseRows();
    const names = rows.map((r) => r.name);
    for (const w of ["reconciler", "metrics-sampler", "template-gc", "build-recovery", "test-counter"]) {
      expect(names).toContain(w);
    }
    expect(names).not.toContain("build-claimer");
    expect(names).not.toContain("host-monitor");
    // One holder per lease, and it is A (first up); B holds none and ran the counter never.
    expect(new Set(rows.map((r) => r.holder))).toEqual(new Set([a.cp.replicaId]));
    expect(b.leases()).toEqual([]);
    expect(counts.get("b") ?? 0).toBe(0);
    expect(counts.get("a") ?? 0).toBeGreaterThan(5);
    const replicas = await t.database.db.selectFrom("replicas").select("id").execute();
    expect(replicas.map((r) => r.id).sort()).toEqual([a.cp.replicaId, b.replicaId].sort());

    // A dies: its timers stop, nothing is released. B takes every lease within TTL + renew.
    const died = Date.now();
    await a.cp.stop({ release: false });
    await until("B takes the counter lease", () => b.leases().includes("test-counter"), 5000);
    const tookMs = Date.now() - died;
    expect(tookMs).toBeLessThan(TTL_MS + 4 * RENEW_MS + 500);
    await until("B holds every lease", async () =>
      (await leaseRows()).every((r) => r.holder === b.replicaId && Number(r.fence) >= 2),
    );
    const before = counts.get("b") ?? 0;
    await until("B runs the counter", () => (counts.get("b") ?? 0) > before + 3);

    // B stops and releases: a new replica C takes over without waiting out the TTL.
    await b.stop();
    expect((await leaseRows()).filter((r) => r.holder === b.replicaId)).toEqual([]);
    const c = await startReplica("c");
    await until("C takes the counter lease", () => c.leases().includes("test-counter"), RENEW_MS * 10);
  }, 60_000);

  it("leaves a live replica's build alone and fails a dead replica's", async () => {
    const db = t.database.db;
    const live = extra.at(-1) as ControlPlane;
    const teamId = `team_${randomBytes(6).toString("hex")}`;
    await sql`INSERT INTO teams (id, name) VALUES (${teamId}, 'builds')`.execute(db);
    await sql`INSERT INTO templates (id, team_id, name, kind) VALUES ('tpl_rep', ${teamId}, 'rep', 'built')`.execute(
      db,
    );
    const build = (id: string, owner: string | null) =>
      sql`INSERT INTO template_builds (id, template_id, team_id, status, tags, vcpus, memory_mib, disk_mib, claimed_by)
        VALUES (${id}, 'tpl_rep', ${teamId}, 'building', '[]', 1, 512, 1024, ${owner})`.execute(db);
    await build("bld_live", live.replicaId);
    await build("bld_dead", "rep_gone");
    // Another replica starting is what used to fail every building build.
    await startReplica("d");
    const status = async (id: string) =>
      (await db.selectFrom("template_builds").select("status").where("id", "=", id).executeTakeFirstOrThrow())
        .status;
    await until("the dead replica's build fails", async () => (await status("bld_dead")) === "error");
    await new Promise((r) => setTimeout(r, TTL_MS * 2));
    expect(await status("bld_live")).toBe("building");
    await sql`DELETE FROM template_builds WHERE id = 'bld_live'`.execute(db);
  }, 30_000);

  it("copies a build to a host once across replicas: the others wait for the holder's result", async () => {
    const db = t.database.db;
    const [b, c] = extra.slice(-2) as [ControlPlane, ControlPlane];
    const teamId = `team_${randomBytes(6).toString("hex")}`;
    await sql`INSERT INTO teams (id, name) VALUES (${teamId}, 'replication')`.execute(db);
    await sql`INSERT INTO templates (id, team_id, name, kind) VALUES ('tpl_copy', ${teamId}, 'copy', 'built')`.execute(
      db,
    );
    await sql`INSERT INTO template_builds (id, template_id, team_id, status, tags, vcpus, memory_mib, disk_mib, spec)
      VALUES ('bld_copy', 'tpl_copy', ${teamId}, 'ready', '[]', 1, 512, 1024, '{"from_image":"base","steps":[]}')`.execute(
      db,
    );
    await sql`INSERT INTO hosts (id, name, state) VALUES ('host_copy', 'copy', 'up')`.execute(db);
    const row = await db
      .selectFrom("template_builds")
      .selectAll()
      .where("id", "=", "bld_copy")
      .executeTakeFirstOrThrow();
    // Replica B is copying it (holds the lease): C's call waits rather than rebuilding.
    await sql`INSERT INTO worker_leases (name, holder, expires_at)
      VALUES ('replicate:bld_copy@host_copy', ${b.replicaId}, now() + interval '1 hour')`.execute(db);
    let settled = false;
    const waiting = c.context.services.templateBuilds.replicate(row, "host_copy").finally(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, TTL_MS * 2));
    expect(settled).toBe(false);
    // B's copy lands: C answers with it, having run nothing.
    await sql`INSERT INTO template_build_hosts (build_id, host_id, agent_name)
      VALUES ('bld_copy', 'host_copy', 'tcopy000')`.execute(db);
    expect(await waiting).toBe("tcopy000");
    await sql`DELETE FROM worker_leases WHERE name LIKE 'replicate:%'`.execute(db);
    await sql`DELETE FROM hosts WHERE id = 'host_copy'`.execute(db);
    await sql`DELETE FROM template_builds WHERE id = 'bld_copy'`.execute(db);
  }, 30_000);

  it("traffic waking a sandbox another replica is resuming waits while that resume's mark stands", async () => {
    const db = t.database.db;
    const [b, c] = extra.slice(-2) as [ControlPlane, ControlPlane];
    // What replica B's resume wrote before asking the agent: running, marked as B's call.
    const markedBy = (replica: string) =>
      sql`INSERT INTO sandboxes (id, team_id, host_id, template, snapshot_id, state, vcpus, memory_mib,
        disk_mib, timeout_sec, metadata, envd_access_token, operation, operation_started_at, operation_replica)
      VALUES ('sbx_waking', ${a.adminTeamId}, NULL, 'base', NULL, 'running', 1, 512, 1024, 300, '{}', 'tok',
        'resume', now(), ${replica})`.execute(db);
    const judge = { self: c.replicaId, replicaTtlMs: TTL_MS, deadlineMs: 10_000 };
    const resumer = new AutoResumer(c.context.services.sandboxes, db, judge, createSilentLogger());
    await markedBy(b.replicaId);
    let woke = false;
    const wake = resumer.wake("sbx_waking", a.adminTeamId)?.then(() => {
      woke = true;
    });
    await new Promise((r) => setTimeout(r, 300));
    expect(woke).toBe(false);
    await sql`UPDATE sandboxes SET operation = NULL, operation_started_at = NULL WHERE id = 'sbx_waking'`.execute(
      db,
    );
    await wake;
    expect(woke).toBe(true);
    await sql`DELETE FROM sandboxes WHERE id = 'sbx_waking'`.execute(db);
    // A mark whose replica is dead does not stand: its call died with it, nothing waits.
    await markedBy("rep_gone");
    const started = Date.now();
    await resumer.wake("sbx_waking", a.adminTeamId);
    expect(Date.now() - started).toBeLessThan(2000);
    await sql`DELETE FROM sandboxes WHERE id = 'sbx_waking'`.execute(db);
  });

  it("streams an event published on one replica to an event client of another, also after a restart of the connections", async () => {
    const [b, c] = extra.slice(-2) as [ControlPlane, ControlPlane]; // two live replicas
    const stream = await openEventStream(b.url, a.adminKey);
    try {
      const publish = (n: number, data: Record<string, unknown> = {}) =>
        c.context.events.publish("sandbox.created", a.adminTeamId, { sandbox_id: `sbx_${n}`, ...data });
      const first = publish(1);
      publish(2);
      // An event over NOTIFY's 8000-byte limit travels through event_spill.
      const big = "x".repeat(20_000);
      publish(3, { big });
      // Another team's event never reaches this team's stream.
      c.context.events.publish("sandbox.created", "team_other", { sandbox_id: "sbx_other" });
      await until("B's stream gets C's events", () => stream.received.length >= 3);
      expect(stream.received.map((e) => e.data.sandbox_id)).toEqual(["sbx_1", "sbx_2", "sbx_3"]);
      expect(stream.received[0]?.id).toBe(first.id);
      expect(stream.received[2]?.data.big).toBe(big);

      // Every server connection ends (as in a PostgreSQL restart); the listeners reconnect.
      await t.terminateConnections?.();
      await until(
        "an event after the restart arrives",
        async () => {
          publish(4);
          await new Promise((r) => setTimeout(r, 200));
          return stream.received.some((e) => e.data.sandbox_id === "sbx_4");
        },
        15_000,
      );
    } finally {
      stream.close();
    }
  }, 30_000);

  it("counts failed sign-ins over every replica", async () => {
    const [x, y] = extra.slice(-2) as [ControlPlane, ControlPlane];
    const signin = async (cp: ControlPlane) => {
      const res = await fetch(`${cp.url}/v1/auth/signin`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ email: "guess@example.com", password: "not the password" }),
      });
      return { status: res.status, code: ((await res.json()) as { error?: { code: string } }).error?.code };
    };
    for (const cp of [x, y, x]) expect((await signin(cp)).code).toBe("unauthenticated");
    expect((await signin(y)).code).toBe("resource_exhausted");
    expect((await signin(x)).code).toBe("resource_exhausted");
  });

  it("sends a delivery a dead replica left pending once, from another replica", async () => {
    const db = t.database.db;
    const posts: string[] = [];
    const receiver = createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => {
        body += c.toString();
      });
      req.on("end", () => {
        posts.push(body);
        res.end("ok");
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    try {
      const port = (receiver.address() as AddressInfo).port;
      await sql`INSERT INTO channels (id, team_id, name, url, secret)
        VALUES ('ch_rep', ${a.adminTeamId}, 'rep', ${`http://127.0.0.1:${port}/hook`}, 'secret')`.execute(db);
      // Left by a replica that died between attempts: pending, its claim lapsed.
      await sql`INSERT INTO channel_deliveries (id, channel_id, event_id, event_type, status, attempts, body, claimed_until)
        VALUES ('dlv_rep', 'ch_rep', 'evt_rep', 'sandbox.created', 'pending', 1, '{"id":"evt_rep"}', now() - interval '1 second')`.execute(
        db,
      );
      const row = () =>
        db.selectFrom("channel_deliveries").selectAll().where("id", "=", "dlv_rep").executeTakeFirstOrThrow();
      await until("the delivery is sent", async () => (await row()).status === "delivered");
      await new Promise((r) => setTimeout(r, RENEW_MS * 5));
      expect(posts).toEqual(['{"id":"evt_rep"}']);
      expect((await row()).attempts).toBe(2);
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });

  it("takes an E2B upload on another replica than the one that made the link", async () => {
    const [x, y] = extra.slice(-2) as [ControlPlane, ControlPlane];
    const headers = { "x-api-key": a.adminKey, "content-type": "application/json" };
    const made = await fetch(`${x.url}/v3/templates`, {
      method: "POST",
      headers,
      body: JSON.stringify({ name: "uploads" }),
    });
    expect(made.status).toBe(202);
    const { templateID } = (await made.json()) as { templateID: string };
    const archive = Buffer.from("an archive");
    const hash = createHash("sha256").update("files").digest("hex");
    const files = `/templates/${templateID}/files/${hash}`;
    const asked = (await (await fetch(`${x.url}${files}`, { headers })).json()) as {
      present: boolean;
      url: string;
    };
    expect(asked.present).toBe(false);
    const onY = new URL(asked.url);
    const put = await fetch(`${y.url}${onY.pathname}`, { method: "PUT", body: archive });
    expect(put.status).toBe(200);
    expect(
      ((await (await fetch(`${x.url}${files}`, { headers })).json()) as { present: boolean }).present,
    ).toBe(true);
    // A link works once.
    expect((await fetch(`${x.url}${onY.pathname}`, { method: "PUT", body: archive })).status).toBe(404);
  });

  // Last: it stops one of the two live replicas.
  it("counts a sandbox start once when the metrics sampler moves to another replica", async () => {
    const db = t.database.db;
    const [x, y] = extra.slice(-2) as [ControlPlane, ControlPlane];
    await until(
      "one replica samples",
      () => x.leases().includes("metrics-sampler") || y.leases().includes("metrics-sampler"),
    );
    const [leader, other] = x.leases().includes("metrics-sampler") ? [x, y] : [y, x];
    const teamId = `team_${randomBytes(6).toString("hex")}`;
    await sql`INSERT INTO teams (id, name) VALUES (${teamId}, 'starts')`.execute(db);
    const start = (id: string) =>
      sql`INSERT INTO sandboxes (id, team_id, template, state, vcpus, memory_mib, disk_mib, timeout_sec, envd_access_token)
        VALUES (${id}, ${teamId}, 'base', 'stopped', 1, 512, 1024, 60, 'token')`.execute(db);
    const startRows = async () =>
      (
        await db
          .selectFrom("team_metrics")
          .select("sandbox_start_rate")
          .where("team_id", "=", teamId)
          .where("sandbox_start_rate", ">", 0)
          .execute()
      ).length;
    await start("sbx_rate_1");
    await until("the leader counts the start", async () => (await startRows()) === 1);
    await leader.stop({ release: false });
    await until("the other replica samples", () => other.leases().includes("metrics-sampler"), 5000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(await startRows()).toBe(1);
    await start("sbx_rate_2");
    await until("the new leader counts the next start", async () => (await startRows()) === 2);
  }, 30_000);
});
