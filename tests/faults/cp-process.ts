import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pg from "pg";

const REPO = resolve(import.meta.dirname, "../..");
const MAIN = join(REPO, "packages/control-plane/src/main.ts");

/**
 * Timings of a control plane under fault: short worker intervals so recovery shows within
 * seconds, and a transition deadline a restore-based create (1–2 s here) never reaches.
 */
export const FAULT_CP_ENV: Record<string, string> = {
  WRENN_CP_HEARTBEAT_INTERVAL_MS: "300",
  WRENN_CP_RECONCILE_INTERVAL_MS: "500",
  // A restarted control plane heartbeats only once the dead one's leases lapse (TTL + renewal):
  // hosts must not look down before that, or creates right after a restart find no host.
  WRENN_CP_LEASE_TTL_MS: "2000",
  WRENN_CP_LEASE_RENEW_MS: "500",
  WRENN_CP_HOST_DEADLINE_MS: "10000",
  WRENN_CP_TRANSITION_DEADLINE_MS: "8000",
  WRENN_CP_ORPHAN_GRACE_MS: "8000",
};

/** A throwaway PostgreSQL database on the test cluster (scripts/ensure-postgres.sh). */
export interface FaultDatabase {
  url: string;
  query<T>(text: string, values?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
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

export async function createFaultDatabase(): Promise<FaultDatabase> {
  const adminUrl =
    process.env.WRENN_TEST_DATABASE_URL ||
    (execFileSync(join(REPO, "scripts/ensure-postgres.sh"), [], { encoding: "utf8" })
      .trim()
      .split("\n")
      .pop() ??
      "");
  if (!adminUrl) throw new Error("ensure-postgres.sh printed no URL");
  const name = `wrenn_fault_${randomBytes(6).toString("hex")}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // A PostgreSQL restart (a fault cell) ends idle connections; the pool drops them and reconnects.
  pool.on("error", () => {});
  return {
    url: url.toString(),
    async query<T>(text: string, values: unknown[] = []) {
      return (await pool.query(text, values)).rows as T[];
    },
    async drop() {
      await pool.end();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/**
 * `wrenn-cp` run as its own process on one database and one port across restarts, so a
 * test can SIGKILL it mid-request like a crash and start it again where it was.
 */
export class CpProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly logPath: string;

  private constructor(
    readonly url: string,
    private readonly env: NodeJS.ProcessEnv,
    private readonly workDir: string,
  ) {
    this.logPath = join(workDir, "cp.log");
  }

  /** A control plane (not yet started) on `databaseUrl`; `env` adds to FAULT_CP_ENV. */
  static async create(databaseUrl: string, env: Record<string, string> = {}): Promise<CpProcess> {
    const port = await freePort();
    const workDir = mkdtempSync(join(tmpdir(), "wrenn-fault-cp-"));
    return new CpProcess(
      `http://127.0.0.1:${port}`,
      {
        ...process.env,
        DATABASE_URL: databaseUrl,
        WRENN_CP_HOST: "127.0.0.1",
        WRENN_CP_PORT: String(port),
        WRENN_CP_TEMPLATE_FILES_DIR: join(workDir, "template-files"),
        WRENN_LOG_LEVEL: "debug",
        ...FAULT_CP_ENV,
        ...env,
      },
      workDir,
    );
  }

  /** Runs `wrenn-cp bootstrap` on the database and returns the admin team's API key. */
  bootstrap(): string {
    const out = execFileSync(process.execPath, ["--import", "tsx", MAIN, "bootstrap"], {
      cwd: REPO,
      env: this.env,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    const key = /api key (\S+)/.exec(out)?.[1];
    if (!key) throw new Error(`bootstrap printed no API key: ${out}`);
    return key;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts `wrenn-cp serve` and resolves once it listens. */
  async start(): Promise<void> {
    if (this.child) throw new Error("control plane already running");
    const log = createWriteStream(this.logPath, { flags: "a" });
    // node --import tsx (not the tsx wrapper) so SIGKILL hits the control plane itself.
    const child = spawn(process.execPath, ["--import", "tsx", MAIN, "serve"], {
      cwd: REPO,
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = new Promise((r) => child.once("exit", () => r()));
    child.stderr?.pipe(log);
    await new Promise<void>((resolveStart, reject) => {
      let out = "";
      child.stdout?.on("data", (chunk: Buffer) => {
        log.write(chunk);
        out += chunk.toString();
        if (out.includes("wrenn-cp listening on")) resolveStart();
      });
      child.once("exit", (code) => reject(new Error(`wrenn-cp exited early (${code}); log ${this.logPath}`)));
    });
  }

  /** SIGKILLs the control plane, like a crash, and resolves once it is gone. */
  async kill(): Promise<void> {
    this.child?.kill("SIGKILL");
    await this.exited;
    this.child = undefined;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }

  /** Stops it (SIGTERM, then SIGKILL after 10 s) and removes its work dir. */
  async close(): Promise<void> {
    const child = this.child;
    if (child) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await this.exited;
      clearTimeout(timer);
      this.child = undefined;
    }
    if (!process.env.WRENN_FAULTS_KEEP_LOGS) rmSync(this.workDir, { recursive: true, force: true });
  }
}
