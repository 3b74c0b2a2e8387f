import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

/**
 * A built template on two hosts: creates go to the host holding its snapshot; when that
 * host is gone, the other host builds the template from the same steps and serves it.
 */
describe("templates across hosts", () => {
  let stack: Stack;
  /** Data dirs of agents the test stopped (the stack no longer closes them). */
  const closedDirs: string[] = [];
  const v1 = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${stack.apiKey}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const exec = async (id: string, cmd: string) =>
    (await v1("POST", `/v1/sandboxes/${id}/exec`, { command: cmd })).body as {
      stdout: string;
      exit_code: number;
    };

  beforeAll(async () => {
    stack = await startStack({
      agents: [
        { netNamePrefix: "wqa", firstSlot: 3300, maxSlots: 4 },
        { netNamePrefix: "wqb", firstSlot: 3400, maxSlots: 4 },
      ],
    });
  }, 300_000);

  afterAll(async () => {
    const dirs = [...closedDirs, ...(stack?.agents.map((a) => a.dataDir) ?? [])];
    await stack?.close();
    for (const dir of closedDirs) rmSync(dir, { recursive: true, force: true });
    expect(dirs.length).toBe(2);
    for (const dir of dirs) {
      expect(findHostLeftovers(dir, "wqa")).toEqual(NO_LEFTOVERS);
      expect(findHostLeftovers(dir, "wqb")).toEqual(NO_LEFTOVERS);
    }
  }, 300_000);

  it("places creates on the host holding the template, and builds it on another when that host is gone", async () => {
    const started = await v1("POST", "/v1/templates", {
      name: "roaming",
      steps: [{ type: "run", command: "echo roamed > /home/user/roam.txt" }],
      start_cmd: "sleep 100000",
    });
    expect(started.status).toBe(202);
    const buildId = (started.body.build as { id: string }).id;
    let build: Record<string, unknown> = {};
    for (let i = 0; i < 600 && build.status !== "ready" && build.status !== "error"; i++) {
      build = (await v1("GET", `/v1/builds/${buildId}`)).body;
      await new Promise((r) => setTimeout(r, 500));
    }
    expect(build.status).toBe("ready");
    const holder = build.host_id as string;

    const first = await v1("POST", "/v1/sandboxes", { template: "roaming" });
    expect(first.status).toBe(201);
    expect(first.body.host_id).toBe(holder);
    expect((await exec(first.body.id as string, "cat /home/user/roam.txt")).stdout).toBe("roamed\n");
    await v1("DELETE", `/v1/sandboxes/${first.body.id}`);

    // The holder goes away; the control plane notices it missing heartbeats.
    const hosts = (await v1("GET", "/v1/hosts")).body.items as { id: string; name: string; state: string }[];
    expect(hosts.length).toBe(2);
    // The stack registered agent i as host "stack-host-<i>".
    const index = Number(
      hosts
        .find((h) => h.id === holder)
        ?.name.split("-")
        .pop(),
    );
    const holderFx = stack.agents[index];
    if (!holderFx) throw new Error(`no agent for host ${holder}`);
    stack.agents.splice(index, 1);
    await holderFx.close({ destroySandboxes: true, keepDataDir: true });
    closedDirs.push(holderFx.dataDir);
    for (let i = 0; i < 100; i++) {
      const h = ((await v1("GET", "/v1/hosts")).body.items as { id: string; state: string }[]).find(
        (x) => x.id === holder,
      );
      if (h?.state === "unreachable") break;
      await new Promise((r) => setTimeout(r, 300));
    }

    const second = await v1("POST", "/v1/sandboxes", { template: "roaming" });
    expect(second.status).toBe(201);
    expect(second.body.host_id).not.toBe(holder);
    expect((await exec(second.body.id as string, "cat /home/user/roam.txt")).stdout).toBe("roamed\n");
    // The start command runs there too: it was running when that host's snapshot was taken.
    expect(
      (await exec(second.body.id as string, "pgrep -f 'sleep 100000' >/dev/null && echo yes")).stdout,
    ).toBe("yes\n");
    const holders = await stack.cp.database.db
      .selectFrom("template_build_hosts")
      .select("host_id")
      .where("build_id", "=", buildId)
      .execute();
    expect(holders.map((h) => h.host_id).sort()).toEqual([holder, second.body.host_id].sort());
    await v1("DELETE", `/v1/sandboxes/${second.body.id}`);
  }, 900_000);
});
