import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { get as httpsGet } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bootstrapAdminTeam,
  type ControlPlane,
  createControlPlane,
  type Database,
  openDatabase,
} from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWrenn } from "./cli-runner.js";
import {
  type AgentRun,
  ENROL_NET_PREFIX,
  freePort,
  newCertInto,
  runAgent,
  waitFor,
} from "./enrol-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/** A guest server on :8080 that accepts any upgrade and echoes the tunnel's bytes. */
const UPGRADE_ECHO_SERVER = `require("http").createServer((q, s) => s.end("plain")).on("upgrade", (q, sock) => {
  sock.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: echo\\r\\nConnection: Upgrade\\r\\n\\r\\n");
  sock.pipe(sock);
}).listen(8080)`;

/** Opens an upgrade to `port` of the sandbox through the proxy, sends `text`, reads it back. */
function upgradeEcho(cpUrl: string, sandboxId: string, port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${cpUrl}/`, {
      headers: {
        connection: "Upgrade",
        upgrade: "echo",
        "e2b-sandbox-id": sandboxId,
        "e2b-sandbox-port": String(port),
      },
    });
    req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on("upgrade", (_res, socket) => {
      let got = "";
      socket.on("data", (chunk: Buffer) => {
        got += chunk.toString();
        if (got.length >= text.length) {
          socket.destroy();
          resolve(got);
        }
      });
      socket.write(text);
    });
    req.on("error", reject);
    req.end();
  });
}

const PREFIX = ENROL_NET_PREFIX;

type ErrorBody = { error: { code: string; message: string } };
type HostView = {
  id: string;
  state: string;
  url: string | null;
  tags: Record<string, string>;
  draining: boolean;
  cert_fingerprint: string | null;
  agent_seen_at: string | null;
  cert_mismatch: boolean;
};
type Sandbox = { id: string; host_id: string; state: string; envd_access_token?: string };

describe("agent enrolment: wrenn-agent --register, pinned TLS, refresh, tags, draining", () => {
  let database: Database;
  let cp: ControlPlane;
  let apiKey = "";
  const dataDir = mkdtempSync(join(tmpdir(), "wrenn-enrol-agent-"));
  const scratch = mkdtempSync(join(tmpdir(), "wrenn-enrol-scratch-"));
  const runs: AgentRun[] = [];
  let agent: AgentRun | undefined;
  let port = 0;
  let hostId = "";
  let firstRefreshToken = "";
  let usedRegistrationToken = "";

  const api = async <T>(method: string, path: string, body?: unknown, key: string | null = apiKey) => {
    const res = await fetch(`${cp.url}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body !== undefined ? { "content-type": "application/json" } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const wrenn = (args: string[]) => runWrenn(args, { WRENN_API_URL: cp.url, WRENN_API_KEY: apiKey });
  const host = async () => (await api<HostView>("GET", `/v1/hosts/${hostId}`)).body;
  const identityDir = join(dataDir, "identity");
  const enrolmentFile = () =>
    JSON.parse(readFileSync(join(identityDir, "enrolment.json"), "utf8")) as {
      host_id: string;
      refresh_token: string;
    };
  const start = (args: string[], dir = dataDir, p = port) => {
    const run = runAgent(dir, p, args);
    runs.push(run);
    return run;
  };

  beforeAll(async () => {
    database = await openDatabase({ pgliteDir: "memory" });
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        heartbeatIntervalMs: 300,
        reconcileIntervalMs: 500,
        hostDeadlineMs: 3000,
        pingTimeoutMs: 2000,
        hostCredentialTtlSec: 5,
        templateFilesDir: join(scratch, "files"),
      },
      database,
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    apiKey = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    port = await freePort();
  });

  afterAll(async () => {
    for (const run of runs) await run.stop();
    await cp?.stop();
    await database?.close().catch(() => {});
    expect(findHostLeftovers(dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  });

  it("a bogus token fails with a stable code and leaves nothing but the identity", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wrenn-enrol-bogus-"));
    try {
      const hostsBefore = (await api<{ items: HostView[] }>("GET", "/v1/hosts")).body.items;
      const run = start(["--register", `wrnr_${"0".repeat(40)}`, "--control-plane", cp.url], dir, 0);
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain("enrolment failed [registration_token_invalid]");
      expect(readdirSync(join(dir, "identity")).sort()).toEqual(["agent-token", "agent.crt", "agent.key"]);
      expect((await api<{ items: HostView[] }>("GET", "/v1/hosts")).body.items).toEqual(hostsBefore);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("enrols through the real `wrenn-agent --register`: pinned certificate, tags, files mode 0600", async () => {
    // `wrenn hosts create` makes the host and prints the agent command that enrols it.
    const cli = await wrenn(["hosts", "create", "enrolled-1", "--shared", "--json"]);
    expect(cli.code).toBe(0);
    const created = JSON.parse(cli.stdout) as {
      host: { id: string };
      registration_token: string;
      agent_command: string;
    };
    expect(created.agent_command).toContain(
      `wrenn-agent serve --register ${created.registration_token} --control-plane ${cp.url}`,
    );
    hostId = created.host.id;
    usedRegistrationToken = created.registration_token;
    agent = start([
      "--register",
      created.registration_token,
      "--control-plane",
      cp.url,
      "--tag",
      "zone=blue",
      "--tag",
      "pool=e2e",
    ]);
    await waitFor("enrolment", async () =>
      /enrolled as host (\S+)/.exec(agent?.output() ?? "") ? true : undefined,
    );
    const cert = new X509Certificate(readFileSync(join(identityDir, "agent.crt")));
    const h = await host();
    expect(h.state).toBe("up");
    expect(h.url).toBe(`https://127.0.0.1:${port}`);
    expect(h.cert_fingerprint).toBe(cert.fingerprint256);
    expect(h.tags).toEqual({ zone: "blue", pool: "e2e" });
    for (const f of ["agent.key", "agent.crt", "agent-token", "enrolment.json"]) {
      expect(statSync(join(identityDir, f)).mode & 0o777).toBe(0o600);
    }
    expect(enrolmentFile().host_id).toBe(hostId);
    firstRefreshToken = enrolmentFile().refresh_token;
    // It really is TLS, with a certificate nobody trusts but the pin.
    const unpinned = await new Promise<string>((r) => {
      const req = httpsGet(`https://127.0.0.1:${port}/`, () => r("connected"));
      req.on("error", (err: NodeJS.ErrnoException) => r(err.code ?? err.message));
    });
    expect(unpinned).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
  }, 180_000);

  it("a used token fails cleanly: the host row is left as it was", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wrenn-enrol-used-"));
    try {
      // What enrolment writes; Pings and heartbeats move the rest.
      const enrolled = () =>
        database.db
          .selectFrom("hosts")
          .select([
            "url",
            "agent_token",
            "cert_pem",
            "cert_fingerprint",
            "credential_hash",
            "tags",
            "registered_at",
          ])
          .where("id", "=", hostId)
          .executeTakeFirstOrThrow();
      const before = await enrolled();
      const token = await database.db
        .selectFrom("host_registration_tokens")
        .select("used_at")
        .where("host_id", "=", hostId)
        .executeTakeFirstOrThrow();
      expect(token.used_at).not.toBeNull();
      const run = start(["--register", usedRegistrationToken, "--control-plane", cp.url], dir, 0);
      expect(await run.exited).toBe(1);
      expect(run.output()).toContain("registration_token_invalid");
      expect(readdirSync(join(dir, "identity")).sort()).toEqual(["agent-token", "agent.crt", "agent.key"]);
      expect(await enrolled()).toEqual(before);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it("heartbeats update agent_seen_at, and the credential rotates at ~80 % of its life", async () => {
    const seen = await waitFor("a heartbeat", async () => (await host()).agent_seen_at ?? undefined);
    await waitFor("a later heartbeat", async () =>
      (await host()).agent_seen_at !== seen ? true : undefined,
    );
    // 5 s credentials: the agent refreshes after ~4 s and keeps heartbeating with the new one.
    const rotated = await waitFor("a refresh", async () =>
      enrolmentFile().refresh_token !== firstRefreshToken ? enrolmentFile().refresh_token : undefined,
    );
    expect(rotated).toMatch(/^wrnf_/);
    const after = (await host()).agent_seen_at;
    await waitFor("a heartbeat with the new credential", async () =>
      (await host()).agent_seen_at !== after ? true : undefined,
    );
    expect((await host()).state).toBe("up");
  }, 60_000);

  it("places by host tags, refuses unmatched tags, and draining stops new placements only", async () => {
    const created = await api<Sandbox>("POST", "/v1/sandboxes", {
      template: "base",
      host_tags: { zone: "blue" },
    });
    expect(created.status).toBe(201);
    expect(created.body.host_id).toBe(hostId);
    const sandboxId = created.body.id;
    // The control plane reaches the guest over the agent's pinned TLS: its API's commands, and
    // the traffic proxy (one pinned pool per host).
    const ran = await api<{ stdout: string; exit_code: number }>("POST", `/v1/sandboxes/${sandboxId}/exec`, {
      command: "echo pinned > /tmp/p; cat /tmp/p",
    });
    expect(ran.body).toMatchObject({ exit_code: 0, stdout: "pinned\n" });
    const proxied = await fetch(`${cp.url}/files?path=/tmp/p&username=root`, {
      headers: {
        "e2b-sandbox-id": sandboxId,
        "e2b-sandbox-port": "49983",
        "x-access-token": created.body.envd_access_token ?? "",
      },
    });
    expect(proxied.status).toBe(200);
    expect(await proxied.text()).toBe("pinned\n");
    // An upgrade (a WebSocket's) takes its own connection to the agent: pinned the same way.
    const echo = await api<{ exit_code: number }>("POST", `/v1/sandboxes/${sandboxId}/exec`, {
      command: `setsid node -e '${UPGRADE_ECHO_SERVER}' >/dev/null 2>&1 & sleep 1`,
    });
    expect(echo.body.exit_code).toBe(0);
    expect(await upgradeEcho(cp.url, sandboxId, 8080, "through the pinned tunnel")).toBe(
      "through the pinned tunnel",
    );
    const unmatched = await api<ErrorBody>("POST", "/v1/sandboxes", {
      template: "base",
      host_tags: { zone: "red" },
    });
    expect(unmatched.status).toBe(503);
    expect(unmatched.body.error.code).toBe("no_capacity");
    expect(unmatched.body.error.message).toContain("zone=red");

    expect((await api<HostView>("PATCH", `/v1/hosts/${hostId}`, { draining: true })).body.draining).toBe(
      true,
    );
    const refused = await api<ErrorBody>("POST", "/v1/sandboxes", { template: "base" });
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe("no_capacity");
    const fork = await api<ErrorBody>("POST", `/v1/sandboxes/${sandboxId}/fork`, { count: 1 });
    expect(fork.status).toBe(412);
    expect(fork.body.error.code).toBe("host_draining");
    // What is on the host stays, and may pause and resume.
    expect((await api<Sandbox>("POST", `/v1/sandboxes/${sandboxId}/pause`)).body.state).toBe("paused");
    expect((await api<Sandbox>("POST", `/v1/sandboxes/${sandboxId}/resume`, {})).body.state).toBe("running");

    expect((await wrenn(["hosts", "undrain", hostId])).stdout).toContain("takes placements");
    const tagged = await wrenn(["hosts", "tag", hostId, "extra=1", "pool=", "--json"]);
    expect((JSON.parse(tagged.stdout) as HostView).tags).toEqual({ zone: "blue", extra: "1" });
    const listed = await wrenn(["hosts", "ls"]);
    expect(listed.stdout).toMatch(new RegExp(`${hostId}\\s+enrolled-1\\s+up\\s+zone=blue,extra=1`));
    const again = await api<Sandbox>("POST", "/v1/sandboxes", { template: "base" });
    expect(again.status).toBe(201);
    expect(again.body.host_id).toBe(hostId);
    for (const id of [sandboxId, again.body.id]) {
      expect((await api("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
    }
  }, 300_000);

  it("refuses an agent whose certificate was swapped: the host goes unreachable while it still heartbeats", async () => {
    await agent?.stop();
    const original = join(scratch, "original-identity");
    execFileSync("mkdir", ["-p", original]);
    for (const f of ["agent.key", "agent.crt"]) renameSync(join(identityDir, f), join(original, f));
    newCertInto(identityDir);
    agent = start([]);
    await waitFor("the impostor listening", async () =>
      /listening on/.test(agent?.output() ?? "") ? true : undefined,
    );
    await waitFor(
      "the host unreachable",
      async () => ((await host()).state === "unreachable" ? true : undefined),
      30_000,
    );
    // Its heartbeats (the credential is still good) say the agent is alive: a pin mismatch, not a dead host.
    const seen = (await host()).agent_seen_at;
    await waitFor("a heartbeat from the impostor", async () =>
      (await host()).agent_seen_at !== seen ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 2000));
    expect((await host()).state).toBe("unreachable");
    // The agent reports the certificate it serves: the API says why the host is unreachable.
    expect((await host()).cert_mismatch).toBe(true);
    expect(agent.output()).toContain("other than the one the control plane pinned");

    await agent.stop();
    for (const f of ["agent.key", "agent.crt"]) renameSync(join(original, f), join(identityDir, f));
    agent = start([]);
    await waitFor(
      "the host up again",
      async () => ((await host()).state === "up" ? true : undefined),
      60_000,
    );
    await waitFor("the mismatch cleared", async () => ((await host()).cert_mismatch ? undefined : true));
  }, 180_000);

  it("a reused refresh token revokes the host, with an audit event and a stable code", async () => {
    const before = await api<Sandbox>("POST", "/v1/sandboxes", { template: "base" });
    expect(before.status, JSON.stringify(before.body)).toBe(201);
    const reuse = await api<ErrorBody>("POST", "/v1/hosts/token", { refresh_token: firstRefreshToken }, null);
    expect(reuse.status).toBe(401);
    expect(reuse.body.error.code).toBe("refresh_token_reused");
    expect((await host()).state).toBe("revoked");
    const audit = await database.db
      .selectFrom("audit_logs")
      .select(["action", "result", "error_code"])
      .where("resource_id", "=", hostId)
      .where("action", "=", "host.credential_reuse")
      .execute();
    expect(audit).toEqual([
      { action: "host.credential_reuse", result: "failure", error_code: "refresh_token_reused" },
    ]);
    // The agent's next heartbeat is refused, its refresh too: it says so and stops trying.
    await waitFor("the agent told", async () =>
      /enrol it again/.test(agent?.output() ?? "") ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 1500));
    expect((await host()).state).toBe("revoked");
    // The revoked host is never asked again: its sandbox is missing, and deletable.
    await waitFor("the sandbox missing", async () =>
      (await api<Sandbox>("GET", `/v1/sandboxes/${before.body.id}`)).body.state === "missing"
        ? true
        : undefined,
    );
    expect((await api("DELETE", `/v1/sandboxes/${before.body.id}`)).status).toBe(204);
  }, 60_000);
});
