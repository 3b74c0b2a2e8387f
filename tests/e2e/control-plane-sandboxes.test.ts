import { bootstrapAdminTeam, type ControlPlane, createControlPlane } from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { apiCaller } from "./api-caller.js";
import { findHostLeftovers } from "./host-leftovers.js";
import { waitFor } from "./polling.js";

type Json = Record<string, unknown>;
type Sandbox = { id: string; host_id: string; state: string; envd_access_token?: string };

/**
 * The control plane over two real host agents (real QEMU VMs): registration, placement
 * across hosts, commands and files through the REST API, reconciliation with what an
 * agent really has, and a killed agent's sandboxes going missing.
 */
describe("control plane with two real host agents", () => {
  const agents: Record<"a" | "b", AgentFixture | undefined> = { a: undefined, b: undefined };
  let cp: ControlPlane;
  let key = "";
  const hostIds: Record<"a" | "b", string> = { a: "", b: "" };
  let s1: Sandbox;
  let s2: Sandbox;

  const api = apiCaller(
    () => cp.url,
    () => key,
  );

  beforeAll(async () => {
    [agents.a, agents.b] = await Promise.all([
      startAgent({ netNamePrefix: "wa", firstSlot: 1, maxSlots: 4, hostId: "host-a" }),
      startAgent({ netNamePrefix: "wb", firstSlot: 500, maxSlots: 4, hostId: "host-b" }),
    ]);
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        heartbeatIntervalMs: 300,
        reconcileIntervalMs: 500,
        hostDeadlineMs: 4000,
        pingTimeoutMs: 2000,
      },
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    key = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    for (const name of ["a", "b"] as const) {
      const created = await api<{ host: { id: string }; registration_token: string }>("POST", "/v1/hosts", {
        name: `host-${name}`,
        shared: true,
      });
      const fixture = agents[name];
      if (!fixture) throw new Error("agent missing");
      const registered = await api<{ host: { id: string; state: string }; credential: string }>(
        "POST",
        "/v1/hosts/register",
        {
          token: created.body.registration_token,
          url: `http://127.0.0.1:${fixture.agent.port}`,
          agent_token: fixture.token,
        },
      );
      expect(registered.status).toBe(200);
      expect(registered.body.host.state).toBe("up");
      expect(registered.body.credential).toMatch(/^wrnh_/);
      hostIds[name] = registered.body.host.id;
    }
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
    await agents.a?.close();
    await agents.b?.close();
    for (const [name, fx] of Object.entries(agents)) {
      if (!fx) continue;
      const left = findHostLeftovers(fx.dataDir, `w${name}`);
      expect(left.qemuProcesses).toEqual([]);
      expect(left.sandboxDirs).toEqual([]);
      expect([...left.namespaces, ...left.links]).toEqual([]);
    }
  });

  it("registered both hosts with their capacity and templates", async () => {
    const hosts = await api<{ items: { id: string; state: string; templates: string[]; capacity: Json }[] }>(
      "GET",
      "/v1/hosts",
    );
    expect(hosts.body.items.map((h) => h.state)).toEqual(["up", "up"]);
    for (const h of hosts.body.items) expect(h.templates).toContain("base");
    const templates = await api<{ items: { name: string; kind: string }[] }>("GET", "/v1/templates");
    expect(templates.body.items).toContainEqual(expect.objectContaining({ name: "base", kind: "base" }));
    const health = await api<{ hosts: { state: string }[] }>("GET", "/health");
    expect(health.body.hosts.map((h) => h.state)).toEqual(["up", "up"]);
  });

  it("places two concurrent creates on different hosts, both running", async () => {
    const [r1, r2] = await Promise.all([
      api<Sandbox>("POST", "/v1/sandboxes", {
        template: "base",
        memory_mb: 512,
        metadata: { n: "1" },
        env: { WHO: "one" },
      }),
      api<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512, metadata: { n: "2" } }),
    ]);
    expect(r1.status, JSON.stringify(r1.body)).toBe(201);
    expect(r2.status, JSON.stringify(r2.body)).toBe(201);
    s1 = r1.body;
    s2 = r2.body;
    expect(s1.state).toBe("running");
    expect(s1.envd_access_token).toMatch(/^[0-9a-f]{48}$/);
    expect(new Set([s1.host_id, s2.host_id])).toEqual(new Set([hostIds.a, hostIds.b]));
    const listed = await api<{ items: Sandbox[] }>(
      "GET",
      `/v1/sandboxes?metadata=${encodeURIComponent("n=1")}`,
    );
    expect(listed.body.items.map((s) => s.id)).toEqual([s1.id]);
  }, 180_000);

  it("runs commands: output, exit codes, env, and base64 for bytes that are not UTF-8", async () => {
    const ok = await api<Json>("POST", `/v1/sandboxes/${s1.id}/exec`, {
      command: "echo $WHO; echo oops >&2; exit 3",
    });
    expect(ok.body).toMatchObject({
      exit_code: 3,
      stdout: "one\n",
      stderr: "oops\n",
      stdout_encoding: "utf8",
    });
    const bin = await api<Json>("POST", `/v1/sandboxes/${s1.id}/exec`, { command: "printf '\\377\\376'" });
    expect(bin.body).toMatchObject({
      exit_code: 0,
      stdout_encoding: "base64",
      stdout: Buffer.from([0xff, 0xfe]).toString("base64"),
    });
    const root = await api<Json>("POST", `/v1/sandboxes/${s1.id}/exec`, { command: "whoami", user: "root" });
    expect(root.body.stdout).toBe("root\n");
  });

  it("moves files in and out, lists, makes and removes directories", async () => {
    const payload = Buffer.alloc(300_000, 7);
    const up = await fetch(`${cp.url}/v1/sandboxes/${s1.id}/files?path=/home/user/data.bin`, {
      method: "PUT",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/octet-stream" },
      body: payload,
    });
    expect(up.status).toBe(200);
    expect(await up.json()).toMatchObject({ size: payload.length });
    const down = await fetch(`${cp.url}/v1/sandboxes/${s1.id}/files?path=/home/user/data.bin`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(down.status).toBe(200);
    expect(Buffer.from(await down.arrayBuffer()).equals(payload)).toBe(true);
    const missing = await api<{ error: { code: string } }>(
      "GET",
      `/v1/sandboxes/${s1.id}/files?path=/nope/none`,
    );
    expect(missing.status).toBe(404);
    expect(
      (await api<Json>("POST", `/v1/sandboxes/${s1.id}/files/mkdir`, { path: "/home/user/d/e" })).body,
    ).toEqual({
      created: true,
    });
    const listing = await api<{ items: { name: string; type: string }[] }>(
      "GET",
      `/v1/sandboxes/${s1.id}/files/list?path=/home/user`,
    );
    expect(listing.body.items).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "data.bin", type: "file" }),
        expect.objectContaining({ name: "d", type: "directory" }),
      ]),
    );
    expect((await api("DELETE", `/v1/sandboxes/${s1.id}/files?path=/home/user/d`)).status).toBe(204);
    const after = await api<{ items: { name: string }[] }>(
      "GET",
      `/v1/sandboxes/${s1.id}/files/list?path=/home/user`,
    );
    expect(after.body.items.map((e) => e.name)).not.toContain("d");
  });

  it("starts, lists and kills background processes; pings, sets the timeout, reads metrics", async () => {
    const started = await api<{ pid: number }>("POST", `/v1/sandboxes/${s1.id}/processes`, {
      command: "sleep 600",
      tag: "sleeper",
    });
    expect(started.status).toBe(201);
    const listed = await api<{ items: { pid: number; tag: string }[] }>(
      "GET",
      `/v1/sandboxes/${s1.id}/processes`,
    );
    expect(listed.body.items).toContainEqual(
      expect.objectContaining({ pid: started.body.pid, tag: "sleeper" }),
    );
    expect((await api("DELETE", `/v1/sandboxes/${s1.id}/processes/sleeper`)).status).toBe(204);
    await waitFor("process gone", async () => {
      const res = await api<{ items: { pid: number }[] }>("GET", `/v1/sandboxes/${s1.id}/processes`);
      return res.body.items.some((p) => p.pid === started.body.pid) ? undefined : true;
    });
    const timeout = await api<{ timeout_sec: number; expires_at: string }>(
      "POST",
      `/v1/sandboxes/${s1.id}/timeout`,
      {
        timeout_sec: 900,
      },
    );
    expect(timeout.body.timeout_sec).toBe(900);
    expect(new Date(timeout.body.expires_at).getTime()).toBeGreaterThan(Date.now() + 800_000);
    expect((await api("POST", `/v1/sandboxes/${s1.id}/ping`)).status).toBe(200);
    const metrics = await api<{ cpu_count: number; mem_total_bytes: number }>(
      "GET",
      `/v1/sandboxes/${s1.id}/metrics/current`,
    );
    expect(metrics.status).toBe(200);
    expect(metrics.body.cpu_count).toBeGreaterThan(0);
  });

  /** Opens a WebSocket to the API, collects its JSON messages, resolves once it closes. */
  function openStream(path: string, headers: Record<string, string>) {
    const ws = new WebSocket(`${cp.url.replace("http", "ws")}${path}`, { headers });
    const messages: Json[] = [];
    const closed = new Promise<{ code: number; messages: Json[] }>((resolve) => {
      ws.on("close", (code) => resolve({ code, messages }));
    });
    const opened = new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    ws.on("message", (data) => messages.push(JSON.parse(data.toString()) as Json));
    const sendJson = (msg: Json) => ws.send(JSON.stringify(msg));
    const waitFor = async (pred: (m: Json) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const found = messages.find(pred);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`no such message in ${JSON.stringify(messages)}`);
    };
    return { ws, opened, closed, sendJson, waitFor, messages };
  }

  it("streams a command over WebSocket (key in the first message): output, stdin, exit code", async () => {
    const s = openStream(`/v1/sandboxes/${s1.id}/exec/ws`, {});
    await s.opened;
    s.sendJson({ type: "auth", api_key: key });
    s.sendJson({ type: "start", command: "echo first; read line; echo got:$line; echo oops >&2; exit 4" });
    await s.waitFor((m) => m.type === "started");
    await s.waitFor((m) => m.type === "stdout");
    s.sendJson({ type: "stdin", data: Buffer.from("typed\n").toString("base64") });
    const { code, messages } = await s.closed;
    expect(code, JSON.stringify(messages)).toBe(1000);
    const text = (type: string) =>
      messages
        .filter((m) => m.type === type)
        .map((m) => Buffer.from(String(m.data), "base64").toString())
        .join("");
    expect(text("stdout")).toBe("first\ngot:typed\n");
    expect(text("stderr")).toBe("oops\n");
    expect(messages.at(-1)).toMatchObject({ type: "exit", exit_code: 4 });

    const denied = openStream(`/v1/sandboxes/${s1.id}/exec/ws`, { authorization: "Bearer wrn_nope" });
    await denied.opened;
    const refused = await denied.closed;
    expect(refused.code).toBe(1008);
    expect(refused.messages[0]).toMatchObject({ type: "error", code: "unauthenticated" });
  });

  it("runs an interactive terminal over WebSocket: input, resize, kill", async () => {
    const t = openStream(`/v1/sandboxes/${s1.id}/pty/ws`, { authorization: `Bearer ${key}` });
    await t.opened;
    t.sendJson({ type: "start", cols: 80, rows: 24 });
    await t.waitFor((m) => m.type === "started");
    t.sendJson({ type: "resize", cols: 100, rows: 30 });
    t.sendJson({ type: "input", data: Buffer.from("stty size; echo mark-$((6*7))\n").toString("base64") });
    const screen = () =>
      t.messages
        .filter((m) => m.type === "data")
        .map((m) => Buffer.from(String(m.data), "base64").toString())
        .join("");
    for (let i = 0; i < 100 && !screen().includes("mark-42"); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(screen()).toContain("30 100");
    expect(screen()).toContain("mark-42");
    t.sendJson({ type: "kill" });
    const { messages } = await t.closed;
    expect(messages.some((m) => m.type === "exit")).toBe(true);
  });

  it("pauses and resumes, snapshots into a template, creates from it and forks, through the API", async () => {
    await api("POST", `/v1/sandboxes/${s1.id}/exec`, { command: "echo kept > /home/user/kept.txt" });
    const paused = await api<Sandbox>("POST", `/v1/sandboxes/${s1.id}/pause`);
    expect(paused.status, JSON.stringify(paused.body)).toBe(200);
    expect(paused.body.state).toBe("paused");
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s1.id}`)).body.state).toBe("paused");
    const whilePaused = await api("POST", `/v1/sandboxes/${s1.id}/exec`, { command: "true" });
    expect(whilePaused.status).toBe(409);
    const resumed = await api<Sandbox>("POST", `/v1/sandboxes/${s1.id}/resume`, {});
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(200);
    expect(resumed.body.state).toBe("running");
    const kept = await api<Json>("POST", `/v1/sandboxes/${s1.id}/exec`, {
      command: "cat /home/user/kept.txt",
    });
    expect(kept.body.stdout).toBe("kept\n");

    const snap = await api<Json>("POST", "/v1/snapshots", { sandbox_id: s1.id, name: "cp-snap" });
    expect(snap.status, JSON.stringify(snap.body)).toBe(201);
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s1.id}`)).body.state).toBe("running");
    const listed = await api<{ items: { name: string }[] }>("GET", "/v1/snapshots");
    expect(listed.body.items.map((t) => t.name)).toContain("cp-snap");
    const clone = await api<Sandbox>("POST", "/v1/sandboxes", { template: "cp-snap", env: { WHO: "clone" } });
    expect(clone.status, JSON.stringify(clone.body)).toBe(201);
    // A snapshot lives on the host that made it.
    expect(clone.body.host_id).toBe(s1.host_id);
    const inClone = await api<Json>("POST", `/v1/sandboxes/${clone.body.id}/exec`, {
      command: "cat /home/user/kept.txt; echo $WHO",
    });
    expect(inClone.body.stdout).toBe("kept\nclone\n");

    const forks = await api<{ items: Sandbox[] }>("POST", `/v1/sandboxes/${s1.id}/fork`, { count: 1 });
    expect(forks.status, JSON.stringify(forks.body)).toBe(201);
    expect(forks.body.items).toHaveLength(1);
    const fork = forks.body.items[0] as Sandbox;
    const inFork = await api<Json>("POST", `/v1/sandboxes/${fork.id}/exec`, {
      command: "cat /home/user/kept.txt",
    });
    expect(inFork.body.stdout).toBe("kept\n");
    // The fork's envd takes its own token, not its parent's (sandbox traffic goes
    // control plane → the host agent's traffic listener → the fork's envd).
    expect(fork.envd_access_token).toMatch(/^[0-9a-f]{48}$/);
    expect(fork.envd_access_token).not.toBe(s1.envd_access_token);
    const envdFile = (token: string | undefined) =>
      fetch(`${cp.url}/files?path=/home/user/kept.txt&username=user`, {
        headers: { "e2b-sandbox-id": fork.id, "e2b-sandbox-port": "49983", "x-access-token": token ?? "" },
      });
    const own = await envdFile(fork.envd_access_token);
    expect(own.status).toBe(200);
    expect(await own.text()).toBe("kept\n");
    expect((await envdFile(s1.envd_access_token)).status).toBe(401);

    const refused = await api<{ error: { code: string } }>("DELETE", "/v1/snapshots/cp-snap");
    expect(refused.status).toBeGreaterThanOrEqual(400);
    for (const id of [clone.body.id, fork.id]) {
      expect((await api("DELETE", `/v1/sandboxes/${id}`)).status).toBe(204);
      expect((await api<Sandbox>("GET", `/v1/sandboxes/${id}`)).body.state).toBe("stopped");
    }
  }, 240_000);

  it("marks a sandbox its agent destroyed as stopped (reconciler)", async () => {
    const holder = s1.host_id === hostIds.a ? agents.a : agents.b;
    await holder?.client.destroySandbox({ sandboxId: s1.id });
    const stopped = await waitFor("s1 stopped", async () => {
      const res = await api<Sandbox>("GET", `/v1/sandboxes/${s1.id}`);
      return res.body.state === "stopped" ? res.body : undefined;
    });
    expect(stopped.state).toBe("stopped");
    const audit = await api<{ items: { action: string; actor_type: string }[] }>(
      "GET",
      `/v1/audit-logs?resource_id=${s1.id}`,
    );
    expect(audit.body.items).toContainEqual(
      expect.objectContaining({ action: "sandbox.reconcile.stopped", actor_type: "system" }),
    );
  });

  it("destroys a sandbox through the API: stopped in the database, gone from its agent", async () => {
    const holder = s2.host_id === hostIds.a ? agents.a : agents.b;
    // s2 stays for the next test; a third sandbox goes to the now emptier host, once the
    // host's own report (its heartbeat) has caught up with the sandboxes gone from it.
    await waitFor("s1's host reported empty", async () => {
      const hosts = await api<{ items: { id: string; allocated: { vcpus: number } }[] }>("GET", "/v1/hosts");
      return hosts.body.items.find((h) => h.id === s1.host_id)?.allocated.vcpus === 0 ? true : undefined;
    });
    const r3 = await api<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
    expect(r3.status, JSON.stringify(r3.body)).toBe(201);
    expect(r3.body.host_id).toBe(s1.host_id);
    expect((await api("DELETE", `/v1/sandboxes/${r3.body.id}`)).status).toBe(204);
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${r3.body.id}`)).body.state).toBe("stopped");
    const other = holder === agents.a ? agents.b : agents.a;
    const { sandboxes } = (await other?.client.listSandboxes({})) ?? { sandboxes: [] };
    expect(sandboxes.map((s) => s.sandboxId)).not.toContain(r3.body.id);
    expect((await api("DELETE", `/v1/sandboxes/${r3.body.id}`)).status).toBe(204);
    const running = await api<{ items: Sandbox[] }>("GET", "/v1/sandboxes?state=running");
    expect(running.body.items.map((s) => s.id)).toEqual([s2.id]);
  }, 120_000);

  it("marks a killed agent's host unreachable and its sandboxes missing", async () => {
    const name = s2.host_id === hostIds.a ? "a" : "b";
    await agents[name]?.close();
    agents[name] = undefined;
    const missing = await waitFor("s2 missing", async () => {
      const res = await api<Sandbox>("GET", `/v1/sandboxes/${s2.id}`);
      return res.body.state === "missing" ? res.body : undefined;
    });
    expect(missing.state).toBe("missing");
    const host = await api<{ state: string }>("GET", `/v1/hosts/${s2.host_id}`);
    expect(host.body.state).toBe("unreachable");
    const exec = await api<{ error: { code: string } }>("POST", `/v1/sandboxes/${s2.id}/exec`, {
      command: "true",
    });
    expect(exec.status).toBe(409);
    // Its host cannot be asked, yet it can be deleted (the reconciler destroys the VM should
    // the host come back: a VM whose row is stopped).
    expect((await api("DELETE", `/v1/sandboxes/${s2.id}`)).status).toBe(204);
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s2.id}`)).body.state).toBe("stopped");
  }, 60_000);
});
