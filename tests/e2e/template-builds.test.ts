import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  bootstrapAdminTeam,
  type ControlPlane,
  createControlPlane,
  e2bFormOfApiKey,
} from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { Sandbox, Template, waitForPort } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * Template builds on a real agent and control plane, driven by the stock `e2b` SDK
 * (`Template.build`) and the /v1 API: each step's effect checked inside sandboxes made from
 * the template, a failing step, the step cache, sandboxes being their own machines, and
 * deleting a template that sandboxes still use.
 */
describe("template builds", () => {
  let agent: AgentFixture;
  let cp: ControlPlane;
  let wrnKey = "";
  let contextDir = "";
  let filesDir = "";
  let restoreE2bEnv = () => {};

  const v1 = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${cp.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${wrnKey}`, ...(body ? { "content-type": "application/json" } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  /** Sandboxes the control plane runs as build VMs (none may be left after a build). */
  const buildVms = async () =>
    cp.database.db
      .selectFrom("sandboxes")
      .select("id")
      .where("build_id", "is not", null)
      .where("state", "not in", ["stopped", "error"])
      .execute();

  beforeAll(async () => {
    contextDir = mkdtempSync(join(tmpdir(), "wrenn-tpl-ctx-"));
    filesDir = mkdtempSync(join(tmpdir(), "wrenn-tpl-files-"));
    mkdirSync(join(contextDir, "app"));
    writeFileSync(join(contextDir, "app", "hello.txt"), "hello from the build context\n");
    writeFileSync(join(contextDir, "app", "index.html"), "<p>served</p>\n");
    agent = await startAgent({ netNamePrefix: "wq", firstSlot: 3200, maxSlots: 6, hostId: "host-tpl" });
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        heartbeatIntervalMs: 500,
        reconcileIntervalMs: 1000,
        templateFilesDir: filesDir,
      },
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    wrnKey = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const host = await v1("POST", "/v1/hosts", { name: "tpl", shared: true });
    await fetch(`${cp.url}/v1/hosts/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        token: host.body.registration_token,
        url: `http://127.0.0.1:${agent.agent.port}`,
        agent_token: agent.token,
      }),
    });
    restoreE2bEnv = pointE2bSdkAt(cp.url, e2bFormOfApiKey(wrnKey));
  }, 180_000);

  afterAll(async () => {
    restoreE2bEnv();
    const dir = agent?.dataDir ?? "";
    await cp?.stop();
    await agent?.close();
    rmSync(contextDir, { recursive: true, force: true });
    rmSync(filesDir, { recursive: true, force: true });
    expect(findHostLeftovers(dir, "wq")).toEqual(NO_LEFTOVERS);
  }, 180_000);

  it("builds with the stock SDK: copy, env, run (as user and root), workdir, start + ready", async () => {
    const logs: string[] = [];
    const template = Template({ fileContextPath: contextDir })
      .fromBaseImage()
      .copy("app", "/opt/app/")
      .setEnvs({ GREETING: "hello there" })
      .runCmd('echo "$GREETING from $(whoami)" > /home/user/marker.txt')
      .runCmd("mkdir -p /srv/data && whoami > /srv/data/who.txt", { user: "root" })
      .setWorkdir("/opt/app")
      .setStartCmd("python3 -m http.server 8000 --bind 127.0.0.1", waitForPort(8000));
    const info = await Template.build(template, "web-app", {
      cpuCount: 1,
      memoryMB: 512,
      onBuildLogs: (entry) => void logs.push(entry.message),
    });
    expect(info.templateId).toMatch(/^tpl_/);
    expect(logs.join("\n")).toContain("COPY app /opt/app/");
    expect(await Template.exists("web-app")).toBe(true);
    expect(await Template.exists("no-such-template")).toBe(false);
    expect(await buildVms()).toEqual([]);

    const sbx = await Sandbox.create("web-app", { timeoutMs: 300_000 });
    try {
      const run = async (cmd: string) => (await sbx.commands.run(cmd)).stdout.trim();
      expect(await run("cat /home/user/marker.txt")).toBe("hello there from user");
      expect(await run("cat /srv/data/who.txt")).toBe("root");
      expect(await run("cat /opt/app/hello.txt")).toBe("hello from the build context");
      expect(await run("stat -c %U /opt/app/hello.txt")).toBe("user");
      expect(await run("echo $GREETING")).toBe("hello there");
      expect(await run("pwd")).toBe("/opt/app");
      expect(await run("whoami")).toBe("user");
      // The start command is running in the sandbox (it was running when the snapshot was taken).
      expect(await run("curl -s http://127.0.0.1:8000/index.html")).toBe("<p>served</p>");

      // A pause without memory reboots the VM on connect: the control plane starts the start
      // command again (as the build ran it) and waits for its ready check before answering.
      const bootId = await run("cat /proc/sys/kernel/random/boot_id");
      expect(await sbx.pause({ keepMemory: false })).toBe(true);
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 300_000 });
      const again = async (cmd: string) => (await back.commands.run(cmd)).stdout.trim();
      expect(await again("cat /proc/sys/kernel/random/boot_id")).not.toBe(bootId);
      expect(await again("curl -s http://127.0.0.1:8000/index.html")).toBe("<p>served</p>");
      expect(await again("ps -o user=,args= -C python3")).toBe(
        "user     python3 -m http.server 8000 --bind 127.0.0.1",
      );
      expect(await again("readlink /proc/$(pgrep -x python3)/cwd")).toBe("/opt/app");
    } finally {
      await sbx.kill();
    }
  }, 600_000);

  it("layers a template on another; sizes are the template's", async () => {
    const child = Template().fromTemplate("web-app").runCmd("echo layered > /home/user/child.txt");
    await Template.build(child, "web-app-plus");
    const sbx = await Sandbox.create("web-app-plus", { timeoutMs: 120_000 });
    try {
      const out = await sbx.commands.run(
        "cat /home/user/marker.txt /home/user/child.txt; curl -s http://127.0.0.1:8000/index.html",
      );
      expect(out.stdout).toBe("hello there from user\nlayered\n<p>served</p>\n");
      // After a reboot the parent's start command (in the layered template's memory) runs again.
      expect(await sbx.pause({ keepMemory: false })).toBe(true);
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 120_000 });
      expect((await back.commands.run("curl -s http://127.0.0.1:8000/index.html")).stdout).toBe(
        "<p>served</p>\n",
      );
    } finally {
      await sbx.kill();
    }
    const resized = await v1("POST", "/v1/sandboxes", { template: "web-app", vcpus: 2 });
    expect(resized.status).toBe(400);
    expect(JSON.stringify(resized.body)).toMatch(/template web-app has 1 vCPUs/);
  }, 600_000);

  it("a failing step fails the build with its output and exit code, and leaves nothing", async () => {
    const template = Template()
      .fromBaseImage()
      .runCmd("echo first step")
      .runCmd("echo about to fail >&2; exit 7");
    await expect(Template.build(template, "broken", { cpuCount: 1, memoryMB: 512 })).rejects.toThrow(
      /step 2 \(RUN echo about to fail.*exit code 7[\s\S]*about to fail/,
    );
    expect(await buildVms()).toEqual([]);
    await expect(Sandbox.create("broken")).rejects.toThrow(/no ready build.*exit code 7/s);
  }, 600_000);

  it("rebuilds from the changed step on, reusing the cached ones", async () => {
    const steps = (last: string) => [
      { type: "run", command: "echo one > /home/user/one.txt" },
      { type: "env", vars: { STAGE: "two" } },
      { type: "run", command: "echo $STAGE > /home/user/two.txt" },
      { type: "run", command: last },
    ];
    const first = await v1("POST", "/v1/templates", {
      name: "layers",
      steps: steps("echo a > /home/user/last.txt"),
    });
    expect(first.status).toBe(202);
    const wait = async (id: string) => {
      for (;;) {
        const b = await v1("GET", `/v1/builds/${id}`);
        if (b.body.status === "ready" || b.body.status === "error") return b.body;
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    const firstBuild = await wait((first.body.build as { id: string }).id);
    expect(firstBuild).toMatchObject({ status: "ready", steps_cached: 0, steps_total: 4 });
    const second = await v1("POST", "/v1/templates", {
      name: "layers",
      steps: steps("echo b > /home/user/last.txt"),
    });
    const secondBuild = await wait((second.body.build as { id: string }).id);
    expect(secondBuild).toMatchObject({ status: "ready", steps_cached: 3, steps_total: 4 });
    const logs = await v1("GET", `/v1/builds/${secondBuild.id}/logs`);
    const text = (logs.body.entries as { message: string }[]).map((e) => e.message).join("\n");
    expect(text).toContain("steps 1-3 cached");
    expect(text).not.toContain("[1/4]");

    const sbx = await Sandbox.create("layers", { timeoutMs: 120_000 });
    try {
      const out = await sbx.commands.run("cat /home/user/one.txt /home/user/two.txt /home/user/last.txt");
      expect(out.stdout).toBe("one\ntwo\nb\n");
    } finally {
      await sbx.kill();
    }
  }, 600_000);

  it("sandboxes from one template are their own machines, and outlive its deletion", async () => {
    const a = await Sandbox.create("layers", { timeoutMs: 120_000 });
    const b = await Sandbox.create("layers", { timeoutMs: 120_000 });
    try {
      const bytes = async (s: Sandbox) =>
        (await s.commands.run("head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'")).stdout;
      expect(await bytes(a)).not.toBe(await bytes(b));
      const tokens = await cp.database.db
        .selectFrom("sandboxes")
        .select("envd_access_token")
        .where("id", "in", [a.sandboxId, b.sandboxId])
        .execute();
      expect(new Set(tokens.map((t) => t.envd_access_token)).size).toBe(2);

      const deleted = await v1("DELETE", "/v1/templates/layers");
      expect(deleted.status).toBe(204);
      expect((await a.commands.run("cat /home/user/last.txt")).stdout).toBe("b\n");
      await expect(Sandbox.create("layers")).rejects.toThrow();
      const listed = await v1("GET", "/v1/templates");
      expect((listed.body.items as { name: string }[]).map((t) => t.name)).not.toContain("layers");
    } finally {
      await a.kill();
      await b.kill();
    }
  }, 600_000);
});
