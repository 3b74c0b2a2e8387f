import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { IMAGES_DIR } from "./agent-fixture.js";
import { runWrenn } from "./cli-runner.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

const REPO_ROOT = join(import.meta.dirname, "../..");
const PREFIX = "wup";

/** Environment lines (`KEY=value`) from a file or printed `export A=1 B=2` lines. */
function envFrom(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const body = line.trim().replace(/^export\s+/, "");
    for (const m of body.matchAll(/([A-Z][A-Z0-9_]*)=(\S+)/g)) out[m[1] ?? ""] = m[2] ?? "";
  }
  return out;
}

/**
 * `make up`'s serving half (scripts/up.sh) as a user runs it, in a fresh $WRENN_DIR (the
 * guest image comes from the shared cache): it prints what to export, the CLI and the
 * stock e2b SDK (TLS, local CA) work with exactly that, and Ctrl-C with a sandbox running
 * stops everything and leaves nothing behind.
 */
describe("make up", () => {
  const wrennDir = mkdtempSync(join(tmpdir(), "wrenn-up-"));
  let up: ChildProcess | undefined;
  let printed = "";

  afterAll(() => {
    if (up && up.exitCode === null) up.kill("SIGKILL");
    if (!process.env.WRENN_TEST_KEEP) rmSync(wrennDir, { recursive: true, force: true });
  });

  it("serves, runs a sandbox for the CLI and the e2b SDK, and Ctrl-C leaves nothing behind", async () => {
    const child = spawn("bash", ["scripts/up.sh"], {
      cwd: REPO_ROOT,
      env: {
        ...process.env,
        WRENN_DIR: wrennDir,
        WRENN_IMAGES_DIR: IMAGES_DIR,
        WRENN_CP_PORT: "0",
        WRENN_AGENT_PORT: "0",
        WRENN_CP_TLS_PORT: "0",
        WRENN_NET_PREFIX: PREFIX,
        WRENN_FIRST_SLOT: "7000",
        WRENN_MAX_SLOTS: "4",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    up = child;
    let progress = "";
    child.stderr?.on("data", (d: Buffer) => {
      progress += d.toString();
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not up in time:\n${progress}`)), 120_000);
      child.stdout?.on("data", (d: Buffer) => {
        printed += d.toString();
        if (printed.includes("Ctrl-C stops it.")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`up exited (${code}):\n${progress}`)));
    });
    expect(progress).toMatch(/==> starting the host agent/);
    expect(progress).toMatch(/==> TLS for wrenn\.localhost/);

    // The credentials file the CLI reads when no env var is set.
    const credentials = envFrom(readFileSync(join(wrennDir, "credentials.env"), "utf8"));
    expect(credentials.WRENN_API_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(credentials.WRENN_API_KEY).toMatch(/^wrn_/);
    // The dashboard at the printed URL, and the printed first user signs in there.
    expect(printed).toContain(`Dashboard: ${credentials.WRENN_API_URL}/`);
    const page = await fetch(`${credentials.WRENN_API_URL}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="app">');
    const password = /^ {2}password (\S+)$/m.exec(printed)?.[1] ?? "";
    const signin = await fetch(`${credentials.WRENN_API_URL}/v1/auth/signin`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: credentials.WRENN_API_URL ?? "" },
      body: JSON.stringify({ email: "admin@localhost", password }),
    });
    expect(signin.status).toBe(200);
    const created = await runWrenn(["sandbox", "create", "--json"], { WRENN_DIR: wrennDir });
    expect(created.code, created.stderr).toBe(0);
    const id = (JSON.parse(created.stdout) as { sandboxId?: string; id?: string }).sandboxId ?? "";
    expect(id).toMatch(/^[a-z0-9]+$/);
    const ran = await runWrenn(["sandbox", "exec", id, "--", "echo up-$((40+2))"], { WRENN_DIR: wrennDir });
    expect(ran.stdout).toBe("up-42\n");

    // The printed TLS lines, exactly as a user would paste them, for the stock SDK.
    const tlsBlock = printed.slice(printed.indexOf("over TLS"));
    const tlsEnv = envFrom(
      tlsBlock
        .split("\n")
        .filter((l) => l.trim().startsWith("export"))
        .join("\n"),
    );
    expect(tlsEnv.E2B_DOMAIN).toMatch(/^wrenn\.localhost:\d+$/);
    // `*.localhost` resolves here (setup enables glibc's myhostname): no resolver hook is printed.
    expect(tlsEnv.NODE_OPTIONS).toBeUndefined();
    const listed = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [
          "--input-type=module",
          "-e",
          [
            'import { Sandbox } from "e2b";',
            "const s = await Sandbox.list().nextItems();",
            "const sbx = await Sandbox.connect(s[0].sandboxId);",
            'await sbx.files.write("/tmp/signed.txt", "signed hello");',
            'const signed = await (await fetch(await sbx.downloadUrl("/tmp/signed.txt"))).text();',
            'const health = (await fetch("https://" + sbx.getHost(49983) + "/health")).status;',
            "console.log(JSON.stringify({ ids: s.map((x) => x.sandboxId), signed, health }));",
          ].join(" "),
        ],
        { cwd: REPO_ROOT, env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...tlsEnv } },
        (err, stdout, stderr) => resolve({ code: err ? 1 : 0, stdout, stderr }),
      );
    });
    expect(listed.code, listed.stderr).toBe(0);
    // Listed, a signed download URL and getHost() over https, with nothing but the printed lines.
    expect(JSON.parse(listed.stdout.trim())).toEqual({ ids: [id], signed: "signed hello", health: 204 });

    // Ctrl-C (SIGINT to the script, as a terminal sends it) with the sandbox running.
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    expect(await exited).toBe(0);
    expect(findHostLeftovers(join(wrennDir, "agent"), PREFIX)).toEqual(NO_LEFTOVERS);
    await expect(fetch(`${credentials.WRENN_API_URL}/health`)).rejects.toThrow();
    expect(readFileSync(join(wrennDir, "logs", "agent.log"), "utf8")).toContain(`"sandbox destroyed"`);
  }, 300_000);
});
