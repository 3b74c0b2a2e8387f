import { applyMigrations, loadMigrations } from "@wrenn/control-plane";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { splitStatements } from "../src/db/migrations.js";
import { revertTransition, transitionSandbox } from "../src/lifecycle/sandbox-states.js";
import { DATABASE_KINDS, openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

/** One suite, run against embedded PGlite and a real PostgreSQL: the `Database` contract. */
describe.each(DATABASE_KINDS)("database contract (%s)", (kind) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await openTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.dispose();
  });

  it("applies every migration once, records it, and applies nothing the second time", async () => {
    const migrations = await loadMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    expect(await applyMigrations(t.database.db, migrations)).toEqual(migrations.map((m) => m.name));
    expect(await applyMigrations(t.database.db, migrations)).toEqual([]);
    const recorded = await sql<{ name: string }>`SELECT name FROM schema_migrations ORDER BY name`.execute(
      t.database.db,
    );
    expect(recorded.rows.map((r) => r.name)).toEqual(migrations.map((m) => m.name));
    const tables = await sql<{ table_name: string }>`
      SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`.execute(t.database.db);
    expect(tables.rows.map((r) => r.table_name)).toEqual(
      expect.arrayContaining([
        "teams",
        "users",
        "team_members",
        "api_keys",
        "hosts",
        "host_registration_tokens",
        "sandboxes",
        "templates",
        "audit_logs",
        "channels",
        "channel_deliveries",
      ]),
    );
  });

  it("a failing migration leaves nothing of itself behind", async () => {
    const broken = [
      { name: "999_broken.sql", sql: "CREATE TABLE half_made (id text);\nSELECT no_such_function();" },
    ];
    await expect(applyMigrations(t.database.db, broken)).rejects.toThrow();
    const half = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'half_made'`.execute(
      t.database.db,
    );
    expect(half.rows[0]?.n).toBe(0);
  });

  it("round-trips timestamps, booleans and jsonb, and filters jsonb by containment", async () => {
    const db = t.database.db;
    await db.insertInto("teams").values({ id: "team_a", name: "A" }).execute();
    for (const [id, metadata] of [
      ["s1", { env: "prod", owner: "ann" }],
      ["s2", { env: "dev" }],
      ["s3", { env: "prod" }],
    ] as const) {
      await db
        .insertInto("sandboxes")
        .values({
          id,
          team_id: "team_a",
          host_id: null,
          template: "base",
          snapshot_id: null,
          state: "running",
          vcpus: 1,
          memory_mib: 512,
          disk_mib: 2048,
          timeout_sec: 60,
          metadata: JSON.stringify(metadata),
          envd_access_token: "x",
          host_ip: null,
          error: null,
          expires_at: new Date("2030-01-01T00:00:00Z"),
          stopped_at: null,
        })
        .execute();
    }
    const team = await db
      .selectFrom("teams")
      .selectAll()
      .where("id", "=", "team_a")
      .executeTakeFirstOrThrow();
    expect(team.is_admin).toBe(false);
    expect(team.created_at).toBeInstanceOf(Date);
    const s1 = await db.selectFrom("sandboxes").selectAll().where("id", "=", "s1").executeTakeFirstOrThrow();
    expect(s1.metadata).toEqual({ env: "prod", owner: "ann" });
    expect(s1.expires_at?.toISOString()).toBe("2030-01-01T00:00:00.000Z");
    const wanted = JSON.stringify({ env: "prod" });
    const prod = await db
      .selectFrom("sandboxes")
      .select("id")
      .where(sql<boolean>`metadata @> ${wanted}::jsonb`)
      .orderBy("id")
      .execute();
    expect(prod.map((r) => r.id)).toEqual(["s1", "s3"]);
  });

  it("enforces the schema's constraints (states, unique key hashes, foreign keys)", async () => {
    const db = t.database.db;
    await expect(
      db
        .updateTable("sandboxes")
        .set({ state: "exploded" as never })
        .where("id", "=", "s1")
        .execute(),
    ).rejects.toThrow();
    const key = {
      team_id: "team_a",
      name: "k",
      prefix: "wrn_1",
      key_hash: "h1",
      created_by: null,
      last_used_at: null,
      revoked_at: null,
    };
    await db
      .insertInto("api_keys")
      .values({ id: "k1", ...key })
      .execute();
    await expect(
      db
        .insertInto("api_keys")
        .values({ id: "k2", ...key })
        .execute(),
    ).rejects.toThrow();
    await expect(
      db
        .insertInto("api_keys")
        .values({ id: "k3", ...key, key_hash: "h3", team_id: "no_such_team" })
        .execute(),
    ).rejects.toThrow();
  });

  it("lets exactly one of two racing transitions win, and undoes one whose RPC failed", async () => {
    const db = t.database.db;
    const results = await Promise.allSettled([
      transitionSandbox(db, "s2", ["running"], "paused"),
      transitionSandbox(db, "s2", ["running"], "stopped"),
    ]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const rejected = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(rejected.reason.code).toBe("conflict");

    const before = await transitionSandbox(db, "s3", ["running"], "stopped");
    expect(before.state).toBe("running");
    const stopped = await db
      .selectFrom("sandboxes")
      .selectAll()
      .where("id", "=", "s3")
      .executeTakeFirstOrThrow();
    expect(stopped.stopped_at).toBeInstanceOf(Date);
    expect(await revertTransition(db, before, "stopped")).toBe(true);
    const back = await db
      .selectFrom("sandboxes")
      .selectAll()
      .where("id", "=", "s3")
      .executeTakeFirstOrThrow();
    expect(back.state).toBe("running");
    expect(back.stopped_at).toBeNull();
    await expect(transitionSandbox(db, "nope", ["running"], "paused")).rejects.toMatchObject({
      code: "not_found",
    });
  });

  it("runs transactions in isolation and rolls them back on error", async () => {
    const db = t.database.db;
    await expect(
      db.transaction().execute(async (tx) => {
        await tx.insertInto("teams").values({ id: "team_rollback", name: "R" }).execute();
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(
      await db.selectFrom("teams").select("id").where("id", "=", "team_rollback").executeTakeFirst(),
    ).toBeUndefined();
    // Concurrent transactions and plain queries all complete (PGlite serialises them).
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        i % 2 === 0
          ? db.transaction().execute((tx) =>
              tx
                .insertInto("teams")
                .values({ id: `team_c${i}`, name: "C" })
                .execute(),
            )
          : db.selectFrom("teams").selectAll().execute(),
      ),
    );
    const made = await db.selectFrom("teams").select("id").where("id", "like", "team_c%").execute();
    expect(made).toHaveLength(4);
  });
});

describe("PostgreSQL: an idle pooled connection the server ends", () => {
  it("is reported, does not end the process, and the next query opens a new one", async () => {
    const errors: Error[] = [];
    const t = await openTestDatabase("postgres", { onIdleConnectionError: (err) => errors.push(err) });
    try {
      await sql`SELECT 1`.execute(t.database.db);
      await t.terminateConnections?.();
      for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(errors.map((e) => e.message).join()).toMatch(/terminat/);
      const again = await sql<{ n: number }>`SELECT 1 AS n`.execute(t.database.db);
      expect(again.rows[0]?.n).toBe(1);
    } finally {
      await t.dispose();
    }
  });
});

describe("migration files", () => {
  it("split into statements at line-ending semicolons, comments dropped", () => {
    expect(
      splitStatements("-- a comment\nCREATE TABLE a (x text);\n\nCREATE INDEX b ON a (x);\n-- trailing\n"),
    ).toEqual(["-- a comment\nCREATE TABLE a (x text)", "CREATE INDEX b ON a (x)"]);
  });
});
