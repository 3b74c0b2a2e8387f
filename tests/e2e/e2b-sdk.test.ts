import { bootstrapAdminTeam, type ControlPlane, createControlPlane } from "@wrenn/control-plane";
import { createSilentLogger } from "@wrenn/shared";
import { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * The stock `e2b` SDK against the full stack (control plane + a host agent + real VMs), the
 * way an existing E2B user points it at Wrenn: API URL, sandbox URL and an API key.
 */
describe("stock e2b SDK against Wrenn", () => {
  let agent: AgentFixture;
  let cp: ControlPlane;
  let opts: { apiKey: string; apiUrl: string; sandboxUrl: string };
  let sbx: Sandbox;

  beforeAll(async () => {
    agent = await startAgent({ netNamePrefix: "we", firstSlot: 3000, maxSlots: 4, hostId: "host-e2b" });
    cp = await createControlPlane({
      config: { port: 0, pgliteDir: "memory", heartbeatIntervalMs: 500, reconcileIntervalMs: 1000 },
      logger: createSilentLogger(),
    });
    await cp.start();
    const key = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const call = async (path: string, body: unknown, auth: boolean) => {
      const res = await fetch(`${cp.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { "x-api-key": key } : {}) },
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
    opts = { apiKey: key, apiUrl: cp.url, sandboxUrl: cp.url };
  }, 120_000);

  afterAll(async () => {
    const dir = agent?.dataDir ?? "";
    await cp?.stop();
    await agent?.close();
    expect(findHostLeftovers(dir, "we")).toEqual(NO_LEFTOVERS);
  });

  it("creates the default template, runs commands and moves files", async () => {
    sbx = await Sandbox.create({
      ...opts,
      metadata: { suite: "e2b-sdk" },
      envs: { FOO: "bar" },
      timeoutMs: 600_000,
    });
    expect(sbx.sandboxId).toMatch(/^[a-z0-9]+$/);
    const run = await sbx.commands.run("echo hi; echo $FOO; whoami");
    expect(run.stdout).toBe("hi\nbar\nuser\n");
    expect(run.exitCode).toBe(0);
    await expect(sbx.commands.run("exit 3")).rejects.toMatchObject({ exitCode: 3 });
    const seen: string[] = [];
    await sbx.commands.run("for i in 1 2 3; do echo line$i; done", { onStdout: (d) => void seen.push(d) });
    expect(seen.join("")).toBe("line1\nline2\nline3\n");

    await sbx.files.write("/home/user/hello.txt", "hello from e2b");
    expect(await sbx.files.read("/home/user/hello.txt")).toBe("hello from e2b");
    const entries = await sbx.files.list("/home/user");
    expect(entries.map((e) => e.name)).toContain("hello.txt");
  }, 180_000);

  it("opens a terminal", async () => {
    let out = "";
    const pty = await sbx.pty.create({
      cols: 80,
      rows: 24,
      onData: (d) => void (out += new TextDecoder().decode(d)),
    });
    await sbx.pty.sendInput(pty.pid, new TextEncoder().encode("echo pty-$((40+2))\n"));
    for (let i = 0; i < 100 && !out.includes("pty-42"); i++) await new Promise((r) => setTimeout(r, 100));
    expect(out).toContain("pty-42");
    await sbx.pty.kill(pty.pid);
  });

  it("lists with a metadata filter, sets the timeout, reads info", async () => {
    const listed = await Sandbox.list({ ...opts, query: { metadata: { suite: "e2b-sdk" } } }).nextItems();
    expect(listed.map((s) => s.sandboxId)).toEqual([sbx.sandboxId]);
    const none = await Sandbox.list({ ...opts, query: { metadata: { suite: "other" } } }).nextItems();
    expect(none).toEqual([]);
    await sbx.setTimeout(300_000);
    const info = await sbx.getInfo();
    expect(info.templateId).toBe("base");
    expect(info.metadata).toEqual({ suite: "e2b-sdk" });
    expect(info.state).toBe("running");
  });

  it("pauses, then connect resumes it where it was", async () => {
    expect(await sbx.pause()).toBe(true);
    expect(await Sandbox.pause(sbx.sandboxId, opts)).toBe(false);
    expect((await Sandbox.getInfo(sbx.sandboxId, opts)).state).toBe("paused");
    expect(await sbx.isRunning()).toBe(false);
    const resumed = await Sandbox.connect(sbx.sandboxId, opts);
    expect(await resumed.files.read("/home/user/hello.txt")).toBe("hello from e2b");
    expect((await resumed.commands.run("echo back")).stdout).toBe("back\n");
    sbx = resumed;
  }, 120_000);

  it("kills the sandbox; it is no longer running and errors use E2B's shape", async () => {
    expect(await sbx.isRunning()).toBe(true);
    await sbx.kill();
    expect(await sbx.isRunning()).toBe(false);
    expect(await Sandbox.kill(sbx.sandboxId, opts)).toBe(false);
    const res = await fetch(`${cp.url}/sandboxes/${sbx.sandboxId}`, {
      headers: { "x-api-key": opts.apiKey },
    });
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
  }, 60_000);
});
