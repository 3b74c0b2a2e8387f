/**
 * How many idle sandboxes a host holds: N sandboxes restored from the base image snapshot
 * (WRENN_BENCH_DENSITY_N, default 10) sit idle, and over a window (WRENN_BENCH_DENSITY_WINDOW_S,
 * default 60 s) each QEMU's CPU use (utime + stime from /proc/<pid>/stat, % of one core) and
 * PSS (/proc/<pid>/smaps_rollup) are measured, with the host's totals. The baseline is one
 * idle sandbox alone, measured first in the same run. Afterwards every sandbox must answer an
 * exec. The agent runs with its default admission limits unless WRENN_VCPU_OVERCOMMIT /
 * WRENN_MEMORY_OVERCOMMIT say otherwise, so N beyond its capacity shows as refused creates.
 */
import { join } from "node:path";
import { agentConfigFromEnv } from "@wrenn/host-agent";
import { envNumber } from "@wrenn/shared";
import { guestThroughTraffic, startAgent } from "../../tests/e2e/agent-fixture.js";
import {
  cpuPercentOver,
  hostCpuSeconds,
  hostMemoryUsedMiB,
  processCpuSeconds,
  processPssMiB,
} from "../lib/proc-usage.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "density";

/** Time given to restored guests to finish their start-up work before idle is measured. */
const SETTLE_MS = (envNumber(process.env.WRENN_BENCH_DENSITY_SETTLE_S) ?? 60) * 1000;
const ALONE_WINDOWS = 3;
const ALONE_WINDOW_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function run(ctx: SuiteContext): Promise<void> {
  const n = envNumber(process.env.WRENN_BENCH_DENSITY_N) ?? 10;
  const image = process.env.WRENN_BENCH_DENSITY_IMAGE || "base";
  const windowMs = (envNumber(process.env.WRENN_BENCH_DENSITY_WINDOW_S) ?? 60) * 1000;
  const fromEnv = agentConfigFromEnv(process.env);
  const fx = await startAgent(
    {
      // Only the admission and density knobs come from the environment; the rest is this suite's own.
      ...(fromEnv.vcpuOvercommit === undefined ? {} : { vcpuOvercommit: fromEnv.vcpuOvercommit }),
      ...(fromEnv.memoryOvercommit === undefined ? {} : { memoryOvercommit: fromEnv.memoryOvercommit }),
      ...(fromEnv.tcgTbSizeMiB === undefined ? {} : { tcgTbSizeMiB: fromEnv.tcgTbSizeMiB }),
      netNamePrefix: "wbd",
      firstSlot: 4000,
      maxSlots: Math.max(n + 5, 20),
    },
    { dataDir: join(ctx.scratchDir, "agent") },
    { waitForImageSnapshot: false },
  );
  const { agent, client, token } = fx;
  const pidOf = (id: string) => agent.manager.get(id).vmmPid ?? 0;
  const ids: string[] = [];
  try {
    ctx.log(`creating from image ${image}; its image snapshot builds first (one cold boot)`);
    await agent.defaultImageSnapshot.ready;
    await sleep(5_000);
    const host0 = hostCpuSeconds();
    await sleep(ALONE_WINDOW_MS);
    const host1 = hostCpuSeconds();
    ctx.measurements.record("host CPU, agent with no sandbox", "%core", [
      ((host1.busy - host0.busy) / (ALONE_WINDOW_MS / 1000)) * 100,
    ]);
    const memoryBefore = hostMemoryUsedMiB();

    const create = async (): Promise<boolean> => {
      try {
        const { sandbox } = await client.createSandbox({ image, timeoutSec: 3600 });
        ids.push(sandbox?.sandboxId ?? "");
        return true;
      } catch (err) {
        ctx.log(`create ${ids.length + 1} refused: ${(err as Error).message}`);
        return false;
      }
    };

    await create();
    ctx.log(`one sandbox up; settling ${SETTLE_MS / 1000} s`);
    await sleep(SETTLE_MS);
    const first = pidOf(ids[0] ?? "");
    const alone: number[] = [];
    for (let i = 0; i < ALONE_WINDOWS; i++) {
      alone.push((await cpuPercentOver([first], ALONE_WINDOW_MS)).get(first) ?? Number.NaN);
    }
    ctx.measurements.record("idle CPU, one VM alone (10 s windows)", "%core", alone);
    ctx.measurements.record("PSS, one VM alone", "MiB", [processPssMiB(first) ?? Number.NaN]);

    const createStart = performance.now();
    while (ids.length < n && (await create())) {
      if (ids.length % 5 === 0) ctx.log(`${ids.length}/${n} sandboxes up`);
    }
    ctx.log(
      `${ids.length}/${n} sandboxes up in ${((performance.now() - createStart) / 1000).toFixed(0)} s; settling ${SETTLE_MS / 1000} s`,
    );
    await sleep(SETTLE_MS);

    ctx.log(`measuring ${windowMs / 1000} s of idle`);
    const pids = ids.map(pidOf);
    const agentCpu0 = processCpuSeconds(process.pid) ?? 0;
    const hostA = hostCpuSeconds();
    const t0 = performance.now();
    const perVm = await cpuPercentOver(pids, windowMs);
    const seconds = (performance.now() - t0) / 1000;
    const hostB = hostCpuSeconds();
    const agentCpu1 = processCpuSeconds(process.pid) ?? 0;
    const label = `${ids.length} idle`;
    ctx.measurements.record(`idle CPU per VM, ${label}`, "%core", [...perVm.values()], {
      baseline: "idle CPU, one VM alone (10 s windows)",
    });
    ctx.measurements.record(`host CPU, ${label}`, "%core", [((hostB.busy - hostA.busy) / seconds) * 100], {
      baseline: "host CPU, agent with no sandbox",
    });
    ctx.measurements.record(`agent process CPU (this process), ${label}`, "%core", [
      ((agentCpu1 - agentCpu0) / seconds) * 100,
    ]);
    const pss = pids.map((pid) => processPssMiB(pid) ?? Number.NaN);
    ctx.measurements.record(`PSS per VM, ${label}`, "MiB", pss, { baseline: "PSS, one VM alone" });
    ctx.measurements.record(`PSS of all VMs, ${label}`, "MiB", [pss.reduce((a, b) => a + b, 0)]);
    ctx.measurements.record(`host memory used (MemTotal − MemAvailable) by ${label}`, "MiB", [
      hostMemoryUsedMiB() - memoryBefore,
    ]);

    const execMs: number[] = [];
    let answered = 0;
    for (const id of ids) {
      const guest = guestThroughTraffic(agent.trafficPort, token, id, agent.manager.get(id).envdAccessToken);
      try {
        execMs.push(
          await timeMs(async () => {
            const res = await guest.exec({ command: "exec /bin/echo hi" });
            if (res.exitCode !== 0) throw new Error(`exit code ${res.exitCode}`);
          }),
        );
        answered += 1;
      } catch (err) {
        ctx.log(`sandbox ${id} did not answer an exec: ${(err as Error).message}`);
      }
    }
    ctx.log(`${answered}/${ids.length} sandboxes answered an exec (${n} asked for)`);
    if (execMs.length > 0) {
      ctx.measurements.record(`exec after idle, ${label}`, "ms", execMs, {
        notes: `${answered}/${ids.length} answered; ${n} sandboxes asked for`,
      });
    }
  } finally {
    ctx.log("destroying the sandboxes");
    await fx.close();
  }
}
