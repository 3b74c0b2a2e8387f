/**
 * Creates from an image restore the image's snapshot: create → first exec from `base`, beside
 * the cold boots measured in the same run (each image snapshot's own build boot: the default
 * size, then variants at other memory sizes, each one cold boot to envd ready).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { guestThroughTraffic, startAgent } from "../../tests/e2e/agent-fixture.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "templates";

const RESTORES = 12;
/** Memory sizes of the variant builds (each one more cold boot for the baseline). */
const VARIANT_MEMORY_MIB = [640, 768];

/** Cold boot times of the image snapshots built so far, by key, from the agent's records. */
function bootTimes(dataDir: string): Map<string, number> {
  const dir = join(dataDir, "templates");
  const times = new Map<string, number>();
  for (const id of readdirSync(dir)) {
    const record = JSON.parse(readFileSync(join(dir, id, "template.json"), "utf8")) as {
      imageKey?: string;
      imageBootMs?: number;
    };
    if (record.imageKey && record.imageBootMs !== undefined) times.set(record.imageKey, record.imageBootMs);
  }
  return times;
}

export async function run(ctx: SuiteContext): Promise<void> {
  const dataDir = join(ctx.scratchDir, "agent");
  const fx = await startAgent(
    {
      netNamePrefix: "wbt",
      firstSlot: 650,
      maxSlots: 20,
    },
    { dataDir },
    { waitForImageSnapshot: false },
  );
  const { agent, client, token } = fx;
  try {
    ctx.log("building the base image snapshot (one cold boot)");
    const built = await agent.defaultImageSnapshot.ready;
    ctx.log(`base image snapshot ready in ${built?.ms ?? 0} ms`);
    for (const memoryMib of VARIANT_MEMORY_MIB) {
      const ms = await timeMs(async () => {
        const { sandbox } = await client.createSandbox({ image: "base", resources: { memoryMib } });
        await client.destroySandbox({ sandboxId: sandbox?.sandboxId ?? "" });
      });
      ctx.log(`variant ${memoryMib} MiB: built and created in ${ms.toFixed(0)} ms`);
    }
    const cold = [...bootTimes(dataDir).values()];
    ctx.measurements.record("cold boot to envd ready (image snapshot builds)", "ms", cold);

    const restored: number[] = [];
    for (let i = 0; i < RESTORES; i++) {
      let id = "";
      restored.push(
        await timeMs(async () => {
          id = (await client.createSandbox({ image: "base" })).sandbox?.sandboxId ?? "";
          const guest = guestThroughTraffic(
            agent.trafficPort,
            token,
            id,
            agent.manager.get(id).envdAccessToken,
          );
          const res = await guest.exec({ command: "exec /bin/echo hi" });
          if (res.exitCode !== 0) throw new Error(`first exec failed: ${res.exitCode}`);
        }),
      );
      ctx.log(`create → first exec ${i + 1}/${RESTORES}: ${restored.at(-1)?.toFixed(0)} ms`);
      await client.destroySandbox({ sandboxId: id });
    }
    ctx.measurements.record("create → first exec from base (restores the image snapshot)", "ms", restored, {
      baseline: "cold boot to envd ready (image snapshot builds)",
    });
  } finally {
    await fx.close();
  }
}
