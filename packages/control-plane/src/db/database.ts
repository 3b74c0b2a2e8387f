import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { lockDataDir } from "./data-dir-lock.js";
import { createPGliteDialect } from "./pglite-dialect.js";
import type { DatabaseSchema } from "./schema.js";

export type Db = Kysely<DatabaseSchema>;
export type DatabaseKind = "postgres" | "pglite";

/** One query layer (Kysely) over either back-end; the rest of the control plane sees only `db`. */
export interface Database {
  readonly db: Db;
  readonly kind: DatabaseKind;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL connection string; when absent, embedded PGlite is used. */
  databaseUrl?: string | undefined;
  /** PGlite data directory, or "memory". */
  pgliteDir: string;
  /**
   * A pooled PostgreSQL connection failed while idle (the server restarted, or an admin
   * ended it). The pool drops that connection and opens another on the next query; this
   * only reports it. Without a listener the pool's error event would end the process.
   */
  onIdleConnectionError?: ((err: Error) => void) | undefined;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  if (options.databaseUrl) {
    const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
    pool.on("error", (err) => options.onIdleConnectionError?.(err));
    const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
    return { db, kind: "postgres", close: () => db.destroy() };
  }
  if (options.pgliteDir === "memory") {
    const pglite = new PGlite();
    await pglite.waitReady;
    const db = new Kysely<DatabaseSchema>({ dialect: createPGliteDialect(pglite) });
    return { db, kind: "pglite", close: () => db.destroy() };
  }
  await mkdir(options.pgliteDir, { recursive: true });
  const release = lockDataDir(options.pgliteDir);
  try {
    const pglite = new PGlite(options.pgliteDir);
    await pglite.waitReady;
    const db = new Kysely<DatabaseSchema>({ dialect: createPGliteDialect(pglite) });
    return {
      db,
      kind: "pglite",
      close: async () => {
        try {
          await db.destroy();
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    release();
    throw err;
  }
}
