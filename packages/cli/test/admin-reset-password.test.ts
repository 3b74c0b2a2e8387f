import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..", "..");
const CP_MAIN = join(ROOT, "packages/control-plane/src/main.ts");
const CLI = join(ROOT, "packages/cli/bin/wrenn.mjs");

/**
 * `wrenn admin reset-password` on the host, against a control plane's PGlite data directory
 * (as `make up` lays it out under $WRENN_DIR): no API key needed, the new password signs in,
 * the old one no longer does, and --new-api-key mends credentials.env.
 */
describe("wrenn admin reset-password", () => {
  const wrennDir = mkdtempSync(join(tmpdir(), "wrenn-admin-reset-"));
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    WRENN_DIR: wrennDir,
    WRENN_CP_PORT: "0",
    WRENN_LOG_LEVEL: "error",
  };
  delete env.DATABASE_URL;
  delete env.WRENN_CP_PGLITE_DIR;
  delete env.WRENN_API_KEY;
  delete env.WRENN_API_URL;
  let server: ChildProcess | undefined;
  let firstPassword = "";
  let reset = { email: "", password: "", apiKey: "", credentialsFile: "" };

  const stopServer = async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
  };
  afterAll(async () => {
    await stopServer();
    rmSync(wrennDir, { recursive: true, force: true });
  });

  const signin = (url: string, password: string) =>
    fetch(`${url}/v1/auth/signin`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email: "admin@localhost", password }),
    });

  it("bootstrap prints the admin user's password once", async () => {
    const first = await run(process.execPath, ["--import", "tsx", CP_MAIN, "bootstrap"], { env, cwd: ROOT });
    firstPassword = /^admin password (\S+)$/m.exec(first.stdout)?.[1] ?? "";
    expect(firstPassword).toHaveLength(24);
    // Later runs (make up's admin-user check) print nothing: the password is never shown again.
    const again = await run(process.execPath, ["--import", "tsx", CP_MAIN, "admin-user"], { env, cwd: ROOT });
    expect(again.stdout).toBe("");
  }, 60_000);

  it("sets a new password and mints an admin key, with no API key, from the data directory", async () => {
    const out = await run(process.execPath, [CLI, "admin", "reset-password", "--new-api-key", "--json"], {
      env,
      cwd: tmpdir(),
    });
    reset = JSON.parse(out.stdout) as typeof reset;
    expect(reset.email).toBe("admin@localhost");
    expect(reset.password).toHaveLength(24);
    expect(reset.password).not.toBe(firstPassword);
    expect(reset.apiKey).toMatch(/^wrn_[0-9a-f]{40}$/);
    expect(reset.credentialsFile).toBe(join(wrennDir, "credentials.env"));
    expect(readFileSync(reset.credentialsFile, "utf8")).toContain(`WRENN_API_KEY=${reset.apiKey}\n`);
  }, 60_000);

  it("the control plane then takes the new password and key, not the old password", async () => {
    server = spawn(process.execPath, ["--import", "tsx", CP_MAIN, "serve"], {
      env,
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      server?.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const m = /wrenn-cp listening on (\S+)/.exec(out);
        if (m?.[1]) resolve(m[1]);
      });
      server?.once("exit", (code) => reject(new Error(`wrenn-cp exited with ${code}`)));
    });
    expect((await signin(url, firstPassword)).status).toBe(401);
    const ok = await signin(url, reset.password);
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { role: string }).role).toBe("owner");
    const teams = await fetch(`${url}/v1/teams`, { headers: { authorization: `Bearer ${reset.apiKey}` } });
    expect(teams.status).toBe(200);
    expect(((await teams.json()) as { items: { is_admin: boolean }[] }).items[0]?.is_admin).toBe(true);
  }, 60_000);

  it("refuses while the control plane holds the embedded database", async () => {
    const refused = await run(process.execPath, [CLI, "admin", "reset-password"], {
      env,
      cwd: tmpdir(),
    }).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(refused?.code).not.toBe(0);
    expect(refused?.stderr).toMatch(/in use by process \d+/);
    await stopServer();
  }, 60_000);

  it("names an unknown user", async () => {
    const refused = await run(
      process.execPath,
      [CLI, "admin", "reset-password", "--email", "nobody@example.com"],
      {
        env,
        cwd: tmpdir(),
      },
    ).then(
      () => null,
      (err: { code: number; stderr: string }) => err,
    );
    expect(refused?.code).not.toBe(0);
    expect(refused?.stderr).toContain("no user nobody@example.com");
  }, 60_000);
});
