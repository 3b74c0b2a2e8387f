import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Kysely, sql } from "kysely";

/** The folder of plain `.sql` migrations, applied in file-name order. */
export const MIGRATIONS_DIR = join(import.meta.dirname, "..", "..", "migrations");

export interface Migration {
  name: string;
  sql: string;
}

export async function loadMigrations(dir: string = MIGRATIONS_DIR): Promise<Migration[]> {
  const names = (await readdir(dir)).filter((n) => n.endsWith(".sql")).sort();
  return Promise.all(names.map(async (name) => ({ name, sql: await readFile(join(dir, name), "utf8") })));
}

/**
 * Splits a migration into statements (each ends with `;` at the end of a line), since
 * PGlite's extended protocol runs one statement per query.
 */
export function splitStatements(text: string): string[] {
  return text
    .split(/;[ \t]*$/m)
    .map((s) => s.trim())
    .filter((s) => s.replace(/--.*$/gm, "").trim() !== "");
}

/**
 * Applies every migration not yet recorded in `schema_migrations`, each in its own
 * transaction with its record, so a failed one leaves nothing half-applied. An advisory
 * lock keeps two control planes starting together from racing (the bookkeeping table's
 * creation included).
 */
export async function applyMigrations<T>(db: Kysely<T>, migrations: Migration[]): Promise<string[]> {
  const applied: string[] = [];
  await db.transaction().execute(async (tx) => {
    await sql`SELECT pg_advisory_xact_lock(7347001)`.execute(tx);
    // Inside the lock: two replicas creating it at once would clash on its catalog row.
    await sql`CREATE TABLE IF NOT EXISTS schema_migrations (
      name text PRIMARY KEY,
      applied_at timestamptz NOT NULL DEFAULT now()
    )`.execute(tx);
    const done = await sql<{ name: string }>`SELECT name FROM schema_migrations`.execute(tx);
    const doneNames = new Set(done.rows.map((r) => r.name));
    for (const migration of migrations) {
      if (doneNames.has(migration.name)) continue;
      for (const statement of splitStatements(migration.sql)) await sql.raw(statement).execute(tx);
      await sql`INSERT INTO schema_migrations (name) VALUES (${migration.name})`.execute(tx);
      applied.push(migration.name);
    }
  });
  return applied;
}
