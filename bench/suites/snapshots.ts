/**
 * Snapshots on real microVMs, in one run beside cold boots measured in the same run:
 * pause (a first, full snapshot; an idle re-pause; a re-pause after dirtying 100 MiB),
 * resume to the first command, create-from-template to the first command, fork of 10 to all
 * ready, and the memory each idle clone costs (PSS: shared template pages split between them).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { GuestClient } from "@wrenn/guest-client";
import { guestThroughTraffic, startAgent } from "../../tests/e2e/agent-fixture.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "snapshots";

const RUNS = 10;
const FORK_RUNS = 10;
const FORK_COUNT = 10;
const MIB = 1024 * 1024;

/** A sandbox's envd through the agent's traffic listener. */
type GuestOf = (sandboxId: string) => GuestClient;

async function firstExec(guestOf: GuestOf, sandboxId: string): Promise<void> {
  const res = await guestOf(sandboxId).exec({ command: "true" });
  if (res.exitCode !== 0) throw new Error(`exec in ${sandboxId} failed: ${res.exitCode}`);
}

/** Proportional and resident set size of a process, in MiB. */
function memoryOf(pid: number): { pss: number; rss: number } {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return { pss: kib("Pss") / 1024, rss: kib("Rss") / 1024 };
}

export async function run(ctx: SuiteContext): Promise<void> {
  const fx = await startAgent(
    {
      netNamePrefix: "wbn",
      firstSlot: 600,
      maxSlots: 40,
      // Idle clones cost little CPU; the default (4 per core) would cap this suite at 8 VMs.
      vcpuOvercommit: 16,
      // "cold boot" below is measured as such: creates must not restore an image snapshot.
      imageSnapshots: false,
    },
    { dataDir: join(ctx.scratchDir, "agent") },
    { waitForImageSnapshot: false },
  );
  const { agent, client, token } = fx;
  const { trafficPort } = await client.ping({});
  const guestOf: GuestOf = (id) =>
    guestThroughTraffic(trafficPort, token, id, agent.manager.get(id).envdAccessToken);

  try {
    const cold: number[] = [];
    const pauseFull: number[] = [];
    const pauseIdle: number[] = [];
    const pauseDirty: number[] = [];
    const resume: number[] = [];
    const resumeDirty: number[] = [];
    const written = { full: [] as number[], idle: [] as number[], dirty: [] as number[] };
    const coldPss: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let id = "";
      cold.push(
        await timeMs(async () => {
          id = (await client.createSandbox({ image: "base", timeoutSec: 3600 })).sandbox?.sandboxId ?? "";
          await firstExec(guestOf, id);
        }),
      );
      await new Promise((r) => setTimeout(r, 1000));
      coldPss.push(memoryOf(agent.manager.vmmPid(id) ?? 0).pss);
      let r: Awaited<ReturnType<typeof client.pauseSandbox>> | undefined;
      pauseFull.push(
        await timeMs(async () => {
          r = await client.pauseSandbox({ sandboxId: id });
        }),
      );
      written.full.push(Number(r?.memoryBytesWritten ?? 0) / MIB);
      resume.push(
        await timeMs(async () => {
          await client.resumeSandbox({ sandboxId: id });
          await firstExec(guestOf, id);
        }),
      );
      pauseIdle.push(
        await timeMs(async () => {
          r = await client.pauseSandbox({ sandboxId: id });
        }),
      );
      written.idle.push(Number(r?.memoryBytesWritten ?? 0) / MIB);
      await client.resumeSandbox({ sandboxId: id });
      await guestOf(id).exec({ command: "head -c 104857600 /dev/urandom > /dev/shm/dirty" });
      pauseDirty.push(
        await timeMs(async () => {
          r = await client.pauseSandbox({ sandboxId: id });
        }),
      );
      written.dirty.push(Number(r?.memoryBytesWritten ?? 0) / MIB);
      resumeDirty.push(
        await timeMs(async () => {
          await client.resumeSandbox({ sandboxId: id });
          await firstExec(guestOf, id);
        }),
      );
      await client.destroySandbox({ sandboxId: id });
      ctx.log(
        `run ${i + 1}/${RUNS}: cold ${cold.at(-1)?.toFixed(0)} ms, pause idle ${pauseIdle.at(-1)?.toFixed(0)} ms, resume ${resume.at(-1)?.toFixed(0)} ms, pause dirty ${pauseDirty.at(-1)?.toFixed(0)} ms`,
      );
    }
    ctx.measurements.record("cold boot to first exec", "ms", cold);
    ctx.measurements.record("resume to first exec", "ms", resume, { baseline: "cold boot to first exec" });
    ctx.measurements.record("resume to first exec, after 100 MiB dirtied", "ms", resumeDirty, {
      baseline: "cold boot to first exec",
    });
    ctx.measurements.record(
      "pause, first snapshot of a cold-booted VM (all resident pages)",
      "ms",
      pauseFull,
      {
        baseline: "cold boot to first exec",
      },
    );
    ctx.measurements.record("pause, idle (re-pause after resume)", "ms", pauseIdle, {
      baseline: "cold boot to first exec",
    });
    ctx.measurements.record("pause after dirtying 100 MiB", "ms", pauseDirty, {
      baseline: "cold boot to first exec",
    });
    ctx.measurements.record("memory written: first snapshot (all resident pages)", "MiB", written.full);
    ctx.measurements.record("memory written: idle re-pause", "MiB", written.idle);
    ctx.measurements.record("memory written: re-pause after 100 MiB dirtied", "MiB", written.dirty);

    // Idle re-pause and resume in a 512 MiB and a 2048 MiB guest, interleaved run by run so
    // load drift lands on both: the cost follows the pages touched, not the memory size.
    const sizes = { small: 512, big: 2048 } as const;
    const ids = { small: "", big: "" };
    for (const k of ["small", "big"] as const) {
      ids[k] =
        (
          await client.createSandbox({
            image: "base",
            timeoutSec: 3600,
            resources: { memoryMib: sizes[k] },
          })
        ).sandbox?.sandboxId ?? "";
      await firstExec(guestOf, ids[k]);
      await client.pauseSandbox({ sandboxId: ids[k] });
    }
    const sized = {
      small: { pause: [] as number[], resume: [] as number[] },
      big: { pause: [] as number[], resume: [] as number[] },
    };
    for (let i = 0; i < RUNS; i++) {
      for (const k of ["small", "big"] as const) {
        sized[k].resume.push(
          await timeMs(async () => {
            await client.resumeSandbox({ sandboxId: ids[k] });
            await firstExec(guestOf, ids[k]);
          }),
        );
        sized[k].pause.push(
          await timeMs(async () => {
            await client.pauseSandbox({ sandboxId: ids[k] });
          }),
        );
      }
    }
    for (const k of ["small", "big"] as const) await client.destroySandbox({ sandboxId: ids[k] });
    ctx.measurements.record("idle re-pause, 512 MiB guest", "ms", sized.small.pause);
    ctx.measurements.record("idle re-pause, 2048 MiB guest", "ms", sized.big.pause, {
      baseline: "idle re-pause, 512 MiB guest",
    });
    ctx.measurements.record("resume to first exec, 512 MiB guest", "ms", sized.small.resume);
    ctx.measurements.record("resume to first exec, 2048 MiB guest", "ms", sized.big.resume, {
      baseline: "resume to first exec, 512 MiB guest",
    });

    const { sandbox: source } = await client.createSandbox({ image: "base", timeoutSec: 3600 });
    const sourceId = source?.sandboxId ?? "";
    await client.createSnapshot({ sandboxId: sourceId, name: "bench-template", leavePaused: true });

    const fromTemplate: number[] = [];
    const clones: string[] = [];
    for (let i = 0; i < RUNS; i++) {
      fromTemplate.push(
        await timeMs(async () => {
          const id = (await client.createSandbox({ snapshot: "bench-template", timeoutSec: 3600 })).sandbox
            ?.sandboxId;
          clones.push(id ?? "");
          await firstExec(guestOf, id ?? "");
        }),
      );
    }
    ctx.measurements.record("create from snapshot template to first exec", "ms", fromTemplate, {
      baseline: "cold boot to first exec",
    });
    await new Promise((r) => setTimeout(r, 3000));
    const clonePss = clones.map((c) => memoryOf(agent.manager.vmmPid(c) ?? 0).pss);
    const cloneRss = clones.map((c) => memoryOf(agent.manager.vmmPid(c) ?? 0).rss);
    ctx.measurements.record("idle VMM PSS, cold-booted sandbox", "MiB", coldPss);
    ctx.measurements.record(`idle VMM PSS per clone (${RUNS} clones of one template)`, "MiB", clonePss, {
      baseline: "idle VMM PSS, cold-booted sandbox",
      notes: `RSS p50 ${cloneRss.sort((a, b) => a - b)[Math.floor(cloneRss.length / 2)]?.toFixed(0)} MiB; 512 MiB guests`,
    });
    for (const c of clones) await client.destroySandbox({ sandboxId: c });

    await client.resumeSandbox({ sandboxId: sourceId });
    const forks: number[] = [];
    for (let i = 0; i < FORK_RUNS; i++) {
      let ids: string[] = [];
      forks.push(
        await timeMs(async () => {
          const res = await client.forkSandbox({ sandboxId: sourceId, count: FORK_COUNT });
          ids = res.sandboxes.map((s) => s.sandboxId);
          await Promise.all(ids.map((id) => firstExec(guestOf, id)));
        }),
      );
      ctx.log(`fork ${i + 1}/${FORK_RUNS}: ${forks.at(-1)?.toFixed(0)} ms`);
      for (const id of ids) await client.destroySandbox({ sandboxId: id });
    }
    ctx.measurements.record(`fork of ${FORK_COUNT} to all ready (first exec in each)`, "ms", forks, {
      baseline: "cold boot to first exec",
    });
    await client.destroySandbox({ sandboxId: sourceId });
    await client.deleteSnapshot({ name: "bench-template" });
  } finally {
    await fx.close();
  }
}
