import { mkdir } from "node:fs/promises";
import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect } from "kysely";
import pg from "pg";
import { lockDataDir } from "./data-dir-lock.js";
import { type Listener, type ListenOptions, listenWithReconnect } from "./pg-listener.js";
import { createPGliteDialect } from "./pglite-dialect.js";
import type { DatabaseSchema } from "./schema.js";

export type Db = Kysely<DatabaseSchema>;
export type DatabaseKind = "postgres" | "pglite";

/** One query layer (Kysely) over either back-end; the rest of the control plane sees only `db`. */
export interface Database {
  readonly db: Db;
  readonly kind: DatabaseKind;
  /**
   * PostgreSQL only: LISTENs on a channel over a dedicated connection that reconnects by
   * itself. Absent on PGlite, where one process is the only replica.
   */
  readonly listen?: (channel: string, options: ListenOptions) => Promise<Listener>;
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
    // A connection lost while checked out (mid-query: a server restart) also emits "error" on
    // its client, which the pool listens for only while idle; the query in flight gets the
    // same error, so this listener only keeps the process from ending.
    pool.on("connect", (client) => client.on("error", () => undefined));
    const db = new Kysely<DatabaseSchema>({ dialect: new PostgresDialect({ pool }) });
    const connectionString = options.databaseUrl;
    return {
      db,
      kind: "postgres",
      listen: (channel, listenOptions) => listenWithReconnect(connectionString, channel, listenOptions),
      close: () => db.destroy(),
    };
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
