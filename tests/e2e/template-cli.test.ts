import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAdminTeam, type ControlPlane, createControlPlane } from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { runWrenn } from "./cli-runner.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/** The SDK stack test's prefix and slots: test files run one at a time, never beside it. */
const PREFIX = "wsdk";
const VM_STEP_MS = 600_000;

const BUILD_FILE = `# The CLI's e2e template
FROM base
NAME cli-web
CPU 1
MEMORY 512
ENV GREETING="hello there" STAGE=cli   # two variables
COPY ./app /opt/app/
RUN echo "$GREETING from $(whoami)" > /home/user/marker.txt
RUN --user=root mkdir -p /srv/data && \\
    whoami > /srv/data/who.txt
WORKDIR /opt/app
START python3 -m http.server 8000 --bind 127.0.0.1
READY port 8000
`;

/**
 * `wrenn template build|ls|rm|logs` as a user runs them (the real binary, a child process)
 * against a real control plane and host agent: a build file with COPY, ENV, RUN (as the
 * user and as root), WORKDIR and START + READY, each step's effect checked in a sandbox
 * created from the template with `wrenn sandbox create <name>`; a failing step; disk use.
 */
describe("wrenn template (CLI) through the full stack", () => {
  let agent: AgentFixture;
  let cp: ControlPlane;
  let env: Record<string, string>;
  const work = mkdtempSync(join(tmpdir(), "wrenn-tpl-cli-"));
  const filesDir = join(work, "template-files");
  const contextDir = join(work, "ctx");
  const sandboxes: string[] = [];

  beforeAll(async () => {
    mkdirSync(join(contextDir, "app"), { recursive: true });
    writeFileSync(join(contextDir, "app", "hello.txt"), "hello from the build context\n");
    writeFileSync(join(contextDir, "app", "index.html"), "<p>served</p>\n");
    writeFileSync(join(contextDir, "wrenn.template"), BUILD_FILE);
    writeFileSync(
      join(contextDir, "broken.template"),
      "RUN echo first\nRUN echo about to fail >&2; exit 7\n",
    );
    agent = await startAgent({ netNamePrefix: PREFIX, firstSlot: 1200, maxSlots: 6, hostId: "host-tpl-cli" });
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
    const apiKey = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const post = async (path: string, body: unknown, key?: string) => {
      const res = await fetch(`${cp.url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as Record<string, unknown>;
    };
    const host = await post("/v1/hosts", { name: "tpl-cli", shared: true }, apiKey);
    await post("/v1/hosts/register", {
      token: host.registration_token,
      url: `http://127.0.0.1:${agent.agent.port}`,
      agent_token: agent.token,
    });
    env = { WRENN_API_URL: cp.url, WRENN_API_KEY: apiKey, WRENN_DIR: join(work, "wrenn-dir") };
  }, VM_STEP_MS);

  afterAll(async () => {
    for (const id of sandboxes) await runWrenn(["sandbox", "rm", id], env).catch(() => undefined);
    const dir = agent?.dataDir ?? "";
    await cp?.stop();
    await agent?.close();
    rmSync(work, { recursive: true, force: true });
    expect(findHostLeftovers(dir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, VM_STEP_MS);

  it(
    "builds from a build file with progress per step, and the template works",
    async () => {
      const built = await runWrenn(["template", "build", "-f", join(contextDir, "wrenn.template")], env, {
        timeoutMs: VM_STEP_MS,
      });
      expect(built.stderr).toBe("");
      expect(built.code).toBe(0);
      const out = built.stdout;
      expect(out).toMatch(/· COPY source \.\/app: .* \(sha256 [0-9a-f]{12}\), uploaded/);
      // The server keeps ENV's variables as a JSON object (jsonb orders its keys).
      expect(out).toMatch(/^\[1\/5\] ENV (GREETING STAGE|STAGE GREETING)$/m);
      expect(out).toContain("[2/5] COPY app /opt/app/");
      expect(out).toContain("[4/5] RUN mkdir -p /srv/data && whoami > /srv/data/who.txt (as root)");
      expect(out).toMatch(/template cli-web ready in [\d.]+ s \(no steps from the cache, 5 in all\)/);
      expect(out).toContain("wrenn sandbox create cli-web");

      const created = await runWrenn(["sandbox", "create", "cli-web", "--json"], env, {
        timeoutMs: VM_STEP_MS,
      });
      expect(created.code, created.stderr).toBe(0);
      const id = (JSON.parse(created.stdout) as { sandboxId: string }).sandboxId;
      sandboxes.push(id);
      const probe = [
        "cat /home/user/marker.txt",
        "cat /srv/data/who.txt",
        "cat /opt/app/hello.txt",
        "stat -c %U /opt/app/hello.txt",
        'echo "$GREETING/$STAGE"',
        "pwd",
        "whoami",
        "curl -s http://127.0.0.1:8000/index.html",
      ].join("; ");
      const inside = await runWrenn(["sandbox", "exec", id, "--", probe], env);
      expect(inside.code, inside.stderr).toBe(0);
      expect(inside.stdout.trim().split("\n")).toEqual([
        "hello there from user",
        "root",
        "hello from the build context",
        "user",
        "hello there/cli",
        "/opt/app",
        "user",
        "<p>served</p>",
      ]);
    },
    VM_STEP_MS,
  );

  it(
    "lists it ready, rebuilds from the cache, and shows disk use in doctor",
    async () => {
      const ls = await runWrenn(["template", "ls"], env);
      expect(ls.code, ls.stderr).toBe(0);
      expect(ls.stdout).toMatch(/^cli-web\s+built\s+ready\s.*\s1\s+512MiB/m);
      const json = JSON.parse((await runWrenn(["template", "ls", "--json"], env)).stdout) as {
        name: string;
        buildStatus: string;
      }[];
      expect(json.find((t) => t.name === "cli-web")?.buildStatus).toBe("ready");

      const again = await runWrenn(
        ["template", "build", "-f", join(contextDir, "wrenn.template"), "--json"],
        env,
        {
          timeoutMs: VM_STEP_MS,
        },
      );
      expect(again.code, again.stderr).toBe(0);
      expect(again.stderr).toContain("already on the server");
      const build = JSON.parse(again.stdout) as { buildId: string; stepsCached: number; status: string };
      expect(build).toMatchObject({ status: "ready", stepsCached: 5 });
      const logs = await runWrenn(["template", "logs", build.buildId], env);
      expect(logs.stdout).toContain("steps 1-5 cached");

      const doctor = await runWrenn(["doctor", "--json"], {
        ...env,
        WRENN_AGENT_DATA_DIR: agent.dataDir,
        WRENN_CP_TEMPLATE_FILES_DIR: filesDir,
      });
      const disk = (JSON.parse(doctor.stdout) as { name: string; data?: unknown }[]).find(
        (c) => c.name === "disk use",
      )?.data as { use: Record<string, { bytes: number; count: number }> };
      expect(disk.use.templates?.count).toBeGreaterThanOrEqual(1);
      expect(disk.use.stepCaches?.count).toBeGreaterThanOrEqual(1);
      expect(disk.use.templateFiles).toMatchObject({ count: 1 });
      expect(disk.use.templates?.bytes).toBeGreaterThan(1024 * 1024);
    },
    VM_STEP_MS,
  );

  it(
    "a failing step exits non-zero with the step, its exit code and its output",
    async () => {
      const failed = await runWrenn(
        ["template", "build", "-f", join(contextDir, "broken.template"), "--name", "cli-broken"],
        env,
        { timeoutMs: VM_STEP_MS },
      );
      expect(failed.code).toBe(1);
      expect(failed.stdout).toContain("[2/2] RUN echo about to fail >&2; exit 7");
      expect(failed.stdout).toContain("      about to fail");
      expect(failed.stderr).toMatch(
        /^error \[build_failed\]: template cli-broken: step 2 \(RUN echo about to fail.*\) failed with exit code 7:\n {4}about to fail\n/,
      );
    },
    VM_STEP_MS,
  );

  it(
    "wrenn template rm removes it",
    async () => {
      const rm = await runWrenn(["template", "rm", "cli-web"], env);
      expect(rm.code, rm.stderr).toBe(0);
      expect(rm.stdout.trim()).toBe("deleted cli-web");
      const ls = await runWrenn(["template", "ls"], env);
      expect(ls.stdout).not.toMatch(/^cli-web\s/m);
      const create = await runWrenn(["sandbox", "create", "cli-web"], env);
      expect(create.code).toBe(1);
    },
    VM_STEP_MS,
  );
});
