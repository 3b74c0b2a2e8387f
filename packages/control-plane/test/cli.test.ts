import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, "..", "src", "main.ts");

/** The `wrenn-cp` binary as a user runs it: bootstrap once, then serve over the same PGlite data dir. */
describe("wrenn-cp binary", () => {
  const dir = mkdtempSync(join(tmpdir(), "wrenn-cp-cli-"));
  const env = {
    ...process.env,
    WRENN_CP_PGLITE_DIR: join(dir, "pglite"),
    WRENN_CP_PORT: "0",
    WRENN_LOG_LEVEL: "error",
  };
  let server: ChildProcess | undefined;
  let adminKey = "";

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server?.once("exit", r));
      server.kill("SIGTERM");
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("bootstraps the admin team once, printing its key, then refuses a second time", async () => {
    const first = await run(process.execPath, ["--import", "tsx", MAIN, "bootstrap", "ops"], { env });
    expect(first.stdout).toMatch(
      /^team team_[a-z0-9]+\napi key wrn_[0-9a-f]{40}\nadmin user admin@localhost\nadmin password \S{24}\n$/,
    );
    await expect(
      run(process.execPath, ["--import", "tsx", MAIN, "bootstrap"], { env }),
    ).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("already bootstrapped"),
    });
    adminKey = /api key (\S+)/.exec(first.stdout)?.[1] ?? "";
  }, 60_000);

  it("serves the API with the data the bootstrap wrote, and stops on SIGTERM", async () => {
    server = spawn(process.execPath, ["--import", "tsx", MAIN, "serve"], {
      env,
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
    const teams = await fetch(`${url}/v1/teams`, { headers: { "x-api-key": adminKey } });
    expect(teams.status).toBe(200);
    expect(((await teams.json()) as { items: { name: string }[] }).items[0]?.name).toBe("ops");
    const exited = new Promise<number | null>((r) => server?.once("exit", (code) => r(code)));
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
  }, 60_000);
});
