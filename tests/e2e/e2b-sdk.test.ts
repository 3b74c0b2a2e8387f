import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bootstrapAdminTeam,
  type ControlPlane,
  createControlPlane,
  e2bFormOfApiKey,
} from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureLocalTls, type LocalTls } from "../../scripts/local-tls.js";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { until } from "./polling.js";

const REPO_ROOT = join(import.meta.dirname, "../..");

const DOMAIN = "wrenn.test";

/** A request sent as `<port>-<id>.<domain>` would arrive (fetch may not set Host). */
function viaHost(
  cpUrl: string,
  host: string,
  path: string,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  const url = new URL(cpUrl);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers: { host } }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Opens an upgraded connection through the proxy, sends `text` and reads what comes back. */
function echoOverUpgrade(
  cpUrl: string,
  host: string,
  text: string,
): Promise<{ status: number; echoed: string }> {
  const url = new URL(cpUrl);
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path: "/echo",
      headers: { host, connection: "Upgrade", upgrade: "websocket" },
    });
    req.on("upgrade", (res, socket) => {
      socket.write(text);
      let echoed = "";
      socket.on("data", (d: Buffer) => {
        echoed += d.toString("utf8");
        if (echoed.length >= text.length) {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, echoed });
        }
      });
      socket.on("error", reject);
    });
    req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on("error", reject);
    req.end();
  });
}

/** A server inside the guest that answers an upgrade with 101 and then echoes raw bytes. */
const ECHO_SERVER = `
const http = require("node:http");
const server = http.createServer((req, res) => res.end("plain " + req.headers.host));
server.on("upgrade", (req, socket) => {
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n");
  socket.pipe(socket);
});
server.listen(8080, "0.0.0.0");
`;

/**
 * Runs an ES module with the stock e2b SDK in a fresh Node process (NODE_EXTRA_CA_CERTS
 * and NODE_OPTIONS are read at process start), with only `env` on top of PATH and HOME.
 */
function runE2bScript(
  source: string,
  env: Record<string, string>,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--input-type=module", "-e", source],
      {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
        timeout: 300_000,
      },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** What a user's script does over TLS: create, run, write and read, reach envd by its host, kill. */
const TLS_SCRIPT = `
import { Sandbox } from "e2b";
const sbx = await Sandbox.create({ metadata: { suite: "e2b-tls" }, timeoutMs: 300_000 });
try {
  const run = await sbx.commands.run("echo tls-$((6*7))");
  await sbx.files.write("/home/user/tls.txt", "over tls");
  const back = await sbx.files.read("/home/user/tls.txt");
  const health = await fetch("https://" + sbx.getHost(49983) + "/health");
  // Signed URLs (no headers, no key): a browser or curl moves files in and out by URL alone.
  const form = new FormData();
  form.append("file", new Blob(["by signed url"]), "signed.txt");
  const up = await fetch(await sbx.uploadUrl("/home/user/signed.txt"), { method: "POST", body: form });
  const down = await fetch(await sbx.downloadUrl("/home/user/signed.txt"));
  const forged = await fetch((await sbx.downloadUrl("/home/user/signed.txt")).replace(/signature=[^&]+/, "signature=v1_forged"));
  console.log(JSON.stringify({
    stdout: run.stdout, back, health: health.status, host: sbx.getHost(49983),
    upload: up.status, download: [down.status, await down.text()], forged: forged.status,
  }));
} finally {
  await sbx.kill();
}
`;

/**
 * The stock `e2b` SDK against the full stack (control plane + a host agent + real VMs), the
 * way an existing E2B user points it at Wrenn: nothing but E2B_API_URL, E2B_SANDBOX_URL and
 * E2B_API_KEY in the environment. One cold boot; the snapshot and fork sandboxes restore.
 */
describe("stock e2b SDK against Wrenn", () => {
  let agent: AgentFixture;
  let cp: ControlPlane;
  let key = "";
  let sbx: Sandbox;
  let tls: LocalTls;
  let tlsDir = "";
  /** E2B_DOMAIN for the TLS listener: the domain and its (test-chosen) port. */
  let tlsDomain = "";
  let restoreE2bEnv = () => {};

  beforeAll(async () => {
    // The certificate `WRENN_SANDBOX_DOMAIN=… make up` makes, from a CA of its own.
    tlsDir = mkdtempSync(join(tmpdir(), "wrenn-e2b-tls-"));
    tls = await ensureLocalTls(tlsDir, DOMAIN);
    agent = await startAgent({ netNamePrefix: "we", firstSlot: 3000, maxSlots: 4, hostId: "host-e2b" });
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        heartbeatIntervalMs: 500,
        reconcileIntervalMs: 1000,
        sandboxDomain: DOMAIN,
        tlsCertPath: tls.certPath,
        tlsKeyPath: tls.keyPath,
        tlsPort: 0,
      },
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    tlsDomain = `${DOMAIN}:${new URL(cp.tlsUrl).port}`;
    const wrnKey = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const call = async (path: string, body: unknown, auth: boolean) => {
      const res = await fetch(`${cp.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { "x-api-key": wrnKey } : {}) },
        body: JSON.stringify(body),
      });
      return (await res.json()) as Record<string, unknown>;
    };
    const host = await call("/v1/hosts", { name: "e2b", shared: true }, true);
    await call(
      "/v1/hosts/register",
      {
        token: host.registration_token,
        url: `http://127.0.0.1:${agent.agent.port}`,
        agent_token: agent.token,
      },
      false,
    );
    // The key in the form E2B users already hold: e2b_<hex> is the same key as wrn_<hex>.
    key = e2bFormOfApiKey(wrnKey);
    restoreE2bEnv = pointE2bSdkAt(cp.url, key, { domain: DOMAIN });
  }, 120_000);

  afterAll(async () => {
    restoreE2bEnv();
    const dir = agent?.dataDir ?? "";
    await cp?.stop();
    await agent?.close();
    rmSync(tlsDir, { recursive: true, force: true });
    expect(findHostLeftovers(dir, "we")).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("creates the default template, runs commands and moves files", async () => {
    sbx = await Sandbox.create({ metadata: { suite: "e2b-sdk" }, envs: { FOO: "bar" }, timeoutMs: 600_000 });
    expect(sbx.sandboxId).toMatch(/^[a-z0-9]+$/);
    const run = await sbx.commands.run("echo hi; echo $FOO; whoami");
    expect(run.stdout).toBe("hi\nbar\nuser\n");
    expect(run.exitCode).toBe(0);
    await expect(sbx.commands.run("exit 3")).rejects.toMatchObject({ exitCode: 3 });
    const seen: string[] = [];
    await sbx.commands.run("for i in 1 2 3; do echo line$i; sleep 0.2; done", {
      onStdout: (d) => void seen.push(d),
    });
    expect(seen.join("")).toBe("line1\nline2\nline3\n");

    await sbx.files.write("/home/user/hello.txt", "hello from e2b");
    expect(await sbx.files.read("/home/user/hello.txt")).toBe("hello from e2b");
    const big = "x".repeat(3 * 1024 * 1024);
    await sbx.files.write("/home/user/big.txt", big);
    expect((await sbx.files.read("/home/user/big.txt")).length).toBe(big.length);
    const entries = await sbx.files.list("/home/user");
    expect(entries.map((e) => e.name)).toEqual(expect.arrayContaining(["hello.txt", "big.txt"]));
  }, 240_000);

  it("opens a terminal", async () => {
    let out = "";
    const pty = await sbx.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => {
        out += new TextDecoder().decode(d);
      },
    });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("echo pty-$((40+2))\n"));
    for (let i = 0; i < 100 && !out.includes("pty-42"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain("pty-42");
    await sbx.pty.kill(pty.pid);
  });

  it("reaches any sandbox port by <port>-<id>.<domain>, upgrades included", async () => {
    // The domain the API hands out carries the TLS listener's port (not 443 here).
    expect(sbx.getHost(8080)).toBe(`8080-${sbx.sandboxId}.${tlsDomain}`);
    await sbx.files.write("/home/user/echo.js", ECHO_SERVER);
    await sbx.commands.run("node /home/user/echo.js", { background: true });
    const host = sbx.getHost(8080);
    await until("the guest server", async () => (await viaHost(cp.url, host, "/")).status === 200);
    const plain = await viaHost(cp.url, host, "/");
    expect(plain.body).toBe(`plain ${host}`);
    const upgraded = await echoOverUpgrade(cp.url, host, "ping through the tunnel");
    expect(upgraded).toEqual({ status: 101, echoed: "ping through the tunnel" });
    // envd by Host too: its /health answers 204 without a token.
    expect((await viaHost(cp.url, sbx.getHost(49983), "/health")).status).toBe(204);
    // Other domains are the API's, not sandbox traffic.
    expect((await viaHost(cp.url, `8080-${sbx.sandboxId}.example.com`, "/health")).body).toContain('"ok"');
  }, 60_000);

  it("works over TLS with nothing but E2B_DOMAIN, the API key and the local CA (no E2B_API_URL/E2B_SANDBOX_URL)", async () => {
    const env = {
      E2B_DOMAIN: tlsDomain,
      E2B_API_KEY: key,
      NODE_EXTRA_CA_CERTS: tls.caCertPath,
      NODE_OPTIONS: `--import=${join(REPO_ROOT, "scripts/resolve-local-domain.mjs")}`,
    };
    const ok = await runE2bScript(TLS_SCRIPT, env);
    expect(ok.code, ok.stderr).toBe(0);
    const out = JSON.parse(ok.stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
    expect(out).toMatchObject({
      stdout: "tls-42\n",
      back: "over tls",
      health: 204,
      upload: 200,
      download: [200, "by signed url"],
      forged: 401,
    });
    expect(out.host).toMatch(new RegExp(`^49983-[a-z0-9]+\\.${tlsDomain.replace(/\./g, "\\.")}$`));
    // The certificate is really checked: without the CA the same client refuses the server.
    const { NODE_EXTRA_CA_CERTS: _ca, ...untrusted } = env;
    const refused = await runE2bScript(
      'import { Sandbox } from "e2b"; await Sandbox.list().nextItems();',
      untrusted,
    );
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/certificate|UNABLE_TO_VERIFY|self[- ]signed/i);
  }, 240_000);

  it("lists with a metadata filter, sets the timeout, reads info and metrics", async () => {
    const listed = await Sandbox.list({ query: { metadata: { suite: "e2b-sdk" } } }).nextItems();
    expect(listed.map((s) => s.sandboxId)).toEqual([sbx.sandboxId]);
    const none = await Sandbox.list({ query: { metadata: { suite: "other" } } }).nextItems();
    expect(none).toEqual([]);
    const paused = await Sandbox.list({ query: { state: ["paused"] } }).nextItems();
    expect(paused).toEqual([]);
    const before = (await sbx.getInfo()).endAt.getTime();
    await sbx.setTimeout(900_000);
    const info = await sbx.getInfo();
    expect(info.endAt.getTime()).toBeGreaterThan(before);
    expect(info.templateId).toBe("base");
    expect(info.metadata).toEqual({ suite: "e2b-sdk" });
    expect(info.state).toBe("running");
    expect(info.lifecycle).toEqual({ onTimeout: "kill", autoResume: false });
    const metrics = await sbx.getMetrics();
    expect(metrics.length).toBeGreaterThanOrEqual(1);
    expect(metrics[0]?.memTotal).toBeGreaterThan(0);
  });

  it("pauses, then connect resumes it where it was", async () => {
    expect(await sbx.pause()).toBe(true);
    expect(await Sandbox.pause(sbx.sandboxId)).toBe(false);
    expect((await Sandbox.getInfo(sbx.sandboxId)).state).toBe("paused");
    expect(await sbx.isRunning()).toBe(false);
    const listed = await Sandbox.list({ query: { state: ["paused"] } }).nextItems();
    expect(listed.map((s) => s.sandboxId)).toEqual([sbx.sandboxId]);
    const resumed = await Sandbox.connect(sbx.sandboxId);
    expect(await resumed.files.read("/home/user/hello.txt")).toBe("hello from e2b");
    expect((await resumed.commands.run("echo back")).stdout).toBe("back\n");
    // Connecting to a running sandbox just hands it back.
    expect((await Sandbox.connect(sbx.sandboxId)).sandboxId).toBe(sbx.sandboxId);
    sbx = resumed;
  }, 180_000);

  it("snapshots a sandbox and starts a new one from the snapshot, which auto-resumes on traffic", async () => {
    await sbx.files.write("/home/user/state.json", '{"step":1}');
    const snap = await sbx.createSnapshot({ name: "e2b-snap" });
    expect(snap).toEqual({ snapshotId: "e2b-snap", names: ["e2b-snap"] });
    // The source keeps running.
    expect((await sbx.commands.run("echo still")).stdout).toBe("still\n");
    const listed = await Sandbox.listSnapshots({ sandboxId: sbx.sandboxId }).nextItems();
    expect(listed.map((s) => s.snapshotId)).toEqual(["e2b-snap"]);
    const child = await Sandbox.create(snap.snapshotId, {
      timeoutMs: 300_000,
      lifecycle: { onTimeout: "pause", autoResume: true },
    });
    try {
      expect(await child.files.read("/home/user/state.json")).toBe('{"step":1}');
      expect(await child.getInfo()).toMatchObject({
        templateId: "e2b-snap",
        lifecycle: { onTimeout: "pause", autoResume: true },
      });
      // Paused with auto resume: the next request through the proxy wakes it, and the
      // requests that arrive while it wakes share that one resume.
      expect(await child.pause()).toBe(true);
      expect((await Sandbox.getInfo(child.sandboxId)).state).toBe("paused");
      const [a, b] = await Promise.all([
        child.commands.run("cat /home/user/state.json"),
        child.files.read("/home/user/state.json"),
      ]);
      expect(a.stdout).toBe('{"step":1}');
      expect(b).toBe('{"step":1}');
      expect((await Sandbox.getInfo(child.sandboxId)).state).toBe("running");
    } finally {
      expect(await child.kill()).toBe(true);
    }
    expect(await Sandbox.deleteSnapshot(snap.snapshotId)).toBe(true);
    expect(await Sandbox.deleteSnapshot(snap.snapshotId)).toBe(false);
  }, 240_000);

  it("forks a running sandbox into two, each its own copy", async () => {
    await sbx.files.write("/home/user/fork.txt", "before the fork");
    const forks = await sbx.fork({ count: 2, timeoutMs: 300_000 });
    const started = forks.filter((f): f is Sandbox => f instanceof Sandbox);
    try {
      expect(forks.filter((f) => !(f instanceof Sandbox))).toEqual([]);
      expect(new Set([sbx.sandboxId, ...started.map((f) => f.sandboxId)]).size).toBe(3);
      for (const [i, fork] of started.entries()) {
        expect(await fork.files.read("/home/user/fork.txt")).toBe("before the fork");
        await fork.files.write("/home/user/fork.txt", `changed in fork ${i}`);
      }
      expect(await sbx.files.read("/home/user/fork.txt")).toBe("before the fork");
      expect(await started[0]?.files.read("/home/user/fork.txt")).toBe("changed in fork 0");
    } finally {
      for (const fork of started) expect(await fork.kill()).toBe(true);
    }
  }, 240_000);

  it("kills the sandbox; it is no longer running and errors use E2B's shape", async () => {
    expect(await sbx.isRunning()).toBe(true);
    expect(await sbx.kill()).toBe(true);
    expect(await sbx.isRunning()).toBe(false);
    expect(await Sandbox.kill(sbx.sandboxId)).toBe(false);
    await expect(Sandbox.getInfo(sbx.sandboxId)).rejects.toThrow(/not found/);
    const res = await fetch(`${cp.url}/sandboxes/${sbx.sandboxId}`, { headers: { "x-api-key": key } });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 404 });
    const proxied = await fetch(`${cp.url}/health`, {
      headers: { "e2b-sandbox-id": sbx.sandboxId, "e2b-sandbox-port": "49983" },
    });
    expect(proxied.status).toBe(502);
    expect(await proxied.json()).toEqual({
      sandboxId: sbx.sandboxId,
      message: "The sandbox was not found",
      code: 502,
    });
    expect(await Sandbox.list().nextItems()).toEqual([]);
  }, 60_000);
});
