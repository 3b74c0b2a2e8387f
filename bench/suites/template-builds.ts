/**
 * Template builds through a real control plane and agent: a 10-step build with every step run
 * (cold: `force`), the same build after step 8 changed (steps 1-7 from the step cache), and
 * create → first exec from the built template against a cold boot of the image measured in the
 * same run.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { startStack } from "../../tests/e2e/stack-fixture.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "template-builds";

const COLD_BUILDS = 2;
const CHANGED_BUILDS = 3;
const CREATES = 8;

/** Ten steps; `eighth` is step 8's command. */
function steps(eighth: string) {
  return [
    { type: "run", command: "mkdir -p /home/user/app && echo 1 > /home/user/app/one" },
    { type: "env", vars: { APP_ENV: "bench" } },
    { type: "run", command: "seq 1 20000 > /home/user/app/numbers" },
    { type: "workdir", path: "/home/user/app" },
    { type: "run", command: "sort -rn numbers > sorted && wc -l sorted" },
    { type: "run", command: "echo $APP_ENV > env.txt", user: "root" },
    { type: "run", command: "python3 -c 'print(sum(range(100000)))' > sum.txt" },
    { type: "run", command: eighth },
    { type: "run", command: "ls -la > listing.txt" },
    { type: "run", command: "cat one env.txt" },
  ];
}

export async function run(ctx: SuiteContext): Promise<void> {
  const stack = await startStack({ agents: [{ netNamePrefix: "wbb", firstSlot: 700, maxSlots: 6 }] });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${stack.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${stack.apiKey}`,
        ...(body ? { "content-type": "application/json" } : {}),
      },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return (text ? JSON.parse(text) : {}) as Record<string, unknown>;
  };
  const build = async (eighth: string, force: boolean) => {
    let result: Record<string, unknown> = {};
    const ms = await timeMs(async () => {
      const started = await call("POST", "/v1/templates", { name: "bench-app", steps: steps(eighth), force });
      const id = (started.build as { id: string }).id;
      for (;;) {
        result = await call("GET", `/v1/builds/${id}`);
        if (result.status === "ready") return;
        if (result.status === "error") throw new Error(`build failed: ${JSON.stringify(result.error)}`);
        await sleep(200);
      }
    });
    return { ms, cached: result.steps_cached as number };
  };
  try {
    const fx = stack.agents[0];
    const coldBoot = (await fx?.agent.defaultImageSnapshot.ready)?.ms ?? 0;
    ctx.log(`base image snapshot (one cold boot) ready in ${coldBoot} ms`);
    ctx.measurements.record("cold boot to envd ready (the image snapshot's build)", "ms", [coldBoot]);

    const cold: number[] = [];
    for (let i = 0; i < COLD_BUILDS; i++) {
      const { ms, cached } = await build(`echo cold ${i} > step8.txt`, true);
      cold.push(ms);
      ctx.log(`10-step build, every step run: ${ms.toFixed(0)} ms (${cached} cached)`);
    }
    ctx.measurements.record("10-step build, every step run", "ms", cold);
    const changed: number[] = [];
    for (let i = 0; i < CHANGED_BUILDS; i++) {
      const { ms, cached } = await build(`echo changed ${i} > step8.txt`, false);
      if (cached !== 7) throw new Error(`expected steps 1-7 from the cache, got ${cached}`);
      changed.push(ms);
      ctx.log(`10-step build after changing step 8: ${ms.toFixed(0)} ms (${cached} cached)`);
    }
    ctx.measurements.record("10-step build after changing step 8", "ms", changed, {
      baseline: "10-step build, every step run",
    });

    const creates: number[] = [];
    for (let i = 0; i < CREATES; i++) {
      let id = "";
      creates.push(
        await timeMs(async () => {
          id = (await call("POST", "/v1/sandboxes", { template: "bench-app" })).id as string;
          const res = await call("POST", `/v1/sandboxes/${id}/exec`, { command: "cat step8.txt" });
          if (res.exit_code !== 0) throw new Error(`first exec failed: ${JSON.stringify(res)}`);
        }),
      );
      await call("DELETE", `/v1/sandboxes/${id}`);
    }
    ctx.measurements.record("create → first exec from the built template (API)", "ms", creates, {
      baseline: "cold boot to envd ready (the image snapshot's build)",
    });
  } finally {
    await stack.close();
  }
}
