import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { type Database, openDatabase } from "@wrenn/control-plane";
import pg from "pg";

/** A database for one test file and how to throw it away. */
export interface TestDatabase {
  database: Database;
  /** PostgreSQL only: ends every server connection to this database, as an admin (or a restart) would. */
  terminateConnections?(): Promise<void>;
  dispose(): Promise<void>;
}

export type DatabaseKindName = "pglite" | "postgres";

export const DATABASE_KINDS: DatabaseKindName[] = ["pglite", "postgres"];

const ENSURE_POSTGRES = join(import.meta.dirname, "..", "..", "..", "..", "scripts", "ensure-postgres.sh");

/**
 * The PostgreSQL server tests use: WRENN_TEST_DATABASE_URL when set (an admin URL),
 * else the private cluster scripts/ensure-postgres.sh installs and starts.
 */
function postgresAdminUrl(): string {
  const fromEnv = process.env.WRENN_TEST_DATABASE_URL;
  if (fromEnv) return fromEnv;
  const out = execFileSync(ENSURE_POSTGRES, [], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const url = out.trim().split("\n").pop();
  if (!url) throw new Error("ensure-postgres.sh printed no URL");
  return url;
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** Opens an empty database of the given kind: in-memory PGlite, or a fresh PostgreSQL database. */
export async function openTestDatabase(
  kind: DatabaseKindName,
  options: { onIdleConnectionError?: (err: Error) => void } = {},
): Promise<TestDatabase> {
  if (kind === "pglite") {
    const database = await openDatabase({ pgliteDir: "memory" });
    return { database, dispose: () => database.close() };
  }
  const adminUrl = postgresAdminUrl();
  const name = `wrenn_test_${randomBytes(6).toString("hex")}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const database = await openDatabase({
    databaseUrl: url.toString(),
    pgliteDir: "memory",
    onIdleConnectionError: options.onIdleConnectionError,
  });
  return {
    database,
    terminateConnections: () =>
      adminQuery(
        adminUrl,
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '${name}' AND pid <> pg_backend_pid()`,
      ),
    async dispose() {
      await database.close();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}
