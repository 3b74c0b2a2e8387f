import { afterAll, beforeAll, beforeEach, describe, it } from "vitest";
import { FaultAgentProcess } from "./agent-process.js";
import { answerOf, FaultStack, type Sandbox, settledText, until } from "./fault-stack.js";
import { FaultTable } from "./fault-table.js";
import type { AfterFault } from "./invariants.js";

/**
 * kill -9 of the host agent (its own process, one data dir and fixed ports) in the middle of a
 * create, pause, resume, snapshot and fork, then the agent started again on the same data dir;
 * and kill -9 of one sandbox's QEMU while it runs and while it is created, resumed or forked.
 * After each cell the invariants of tests/faults/invariants.ts hold: every row settles running,
 * paused (with its data), stopped or error, each is deletable, and nothing is left on the host.
 */
describe("fault suite: host agent and QEMU killed mid-operation", () => {
  const table = new FaultTable();
  let agent: FaultAgentProcess;
  let stack: FaultStack;

  const check = (files: Map<string, string[]>) => stack.check(agent, files);
  /** Rows of earlier cells (all stopped by now), left out of a cell's outcome. */
  let rowsBefore = new Set<string>();
  beforeEach(async () => {
    rowsBefore = await stack.rowIds();
  });
  const fresh = (after: AfterFault, ids: (id: string) => boolean = () => true) =>
    after.states.filter((r) => !rowsBefore.has(r.id) && ids(r.id));
  const outcomeOf = (answer: string, after: AfterFault, ids?: (id: string) => boolean) =>
    `request ${answer}; ${settledText(fresh(after, ids), after.settleMs)}, deleted, no leftovers`;
  const newDir = (before: Set<string>) => agent.sandboxDirs().find((id) => !before.has(id));
  const newMemoryFile = (before: Set<string>) => agent.memoryFiles().some((f) => !before.has(f));

  beforeAll(async () => {
    agent = await FaultAgentProcess.launch({ firstSlot: 6400, hostId: "flt-agent-kill" });
    stack = await FaultStack.start([agent]);
  }, 180_000);

  afterAll(async () => {
    table.print("kill -9 of the host agent and of a sandbox's QEMU (real VMs, control plane on PostgreSQL)");
    await stack?.close();
    await agent?.close();
  }, 120_000);

  /** SIGKILLs the agent once `fired` is true (or after `timeoutMs`), then starts it again. */
  const crashAgentWhen = async (fired: () => boolean, timeoutMs = 30_000): Promise<boolean> => {
    const seen = await until(async () => fired(), timeoutMs, 5);
    await agent.kill();
    await agent.start();
    return seen;
  };

  it("kill -9 of the agent during create", async () => {
    await table.cell("kill -9 agent", "create", async () => {
      const before = new Set(agent.sandboxDirs());
      const request = answerOf(stack.api.call("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 }));
      const seen = await crashAgentWhen(() => newDir(before) !== undefined);
      const answer = await request;
      const after = await check(new Map());
      return {
        trigger: seen ? "the sandbox's record appears in the data dir" : "never seen; killed after 30 s",
        outcome: outcomeOf(answer, after),
      };
    });
  }, 180_000);

  /** pause, resume or snapshot of a sandbox with a file written before, the agent killed mid-step. */
  const killDuring = async (step: "pause" | "resume" | "snapshot") => {
    const s = await stack.create();
    const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
    if (step === "resume") await stack.step(s.id, "pause");
    const memBefore = new Set(agent.memoryFiles());
    const request = answerOf(
      step === "snapshot"
        ? stack.api.call("POST", "/v1/snapshots", { sandbox_id: s.id, name: "flt-agent-snap" })
        : stack.api.call("POST", `/v1/sandboxes/${s.id}/${step}`, {}),
    );
    // pause and snapshot write a memory generation; resume starts a QEMU over it.
    const seen = await crashAgentWhen(() =>
      step === "resume" ? agent.qemuOf(s.id).length > 0 : newMemoryFile(memBefore),
    );
    const answer = await request;
    const after = await check(files);
    let snapshot = "";
    if (step === "snapshot") {
      const rows = await stack.db.query<{ name: string }>(
        "SELECT name FROM templates WHERE kind = 'snapshot'",
      );
      for (const r of rows) {
        const res = await stack.api.call("DELETE", `/v1/snapshots/${r.name}`);
        if (res.status !== 204) throw new Error(`DELETE snapshot ${r.name}: ${res.status}`);
      }
      const held = (await agent.client.listSnapshots({})).snapshots.map((t) => t.name);
      if (held.length > 0) throw new Error(`the agent still holds snapshots ${held.join(", ")}`);
      snapshot = `; ${rows.length} snapshot template(s) kept and deleted`;
    }
    return {
      trigger: seen
        ? step === "resume"
          ? "the sandbox's QEMU started (resume under way)"
          : "a memory generation file appears (being written)"
        : "never seen; killed after 30 s",
      outcome: `${outcomeOf(answer, after, (id) => id === s.id)}; file written before intact${snapshot}`,
    };
  };

  it("kill -9 of the agent during pause", async () => {
    await table.cell("kill -9 agent", "pause", () => killDuring("pause"));
  }, 180_000);

  it("kill -9 of the agent during resume", async () => {
    await table.cell("kill -9 agent", "resume", () => killDuring("resume"));
  }, 180_000);

  it("kill -9 of the agent during snapshot", async () => {
    await table.cell("kill -9 agent", "snapshot", () => killDuring("snapshot"));
  }, 180_000);

  /** A fork of a sandbox with a file, with `fault` run once the fork's record appears. */
  const forkWith = async (fault: (forkId: string) => Promise<void>) => {
    const s = await stack.create();
    const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
    const before = new Set(agent.sandboxDirs());
    const request = answerOf(stack.api.call("POST", `/v1/sandboxes/${s.id}/fork`, { count: 1 }));
    const seen = await until(async () => newDir(before) !== undefined, 30_000, 5);
    await fault(newDir(before) ?? "");
    const answer = await request;
    const after = await check(files);
    const forks = fresh(after, (id) => id !== s.id);
    return {
      seen,
      outcome: `request ${answer}; fork ${forks.map((r) => r.state).join(",") || "never got a row"}; source ${settledText(
        after.states.filter((r) => r.id === s.id),
        after.settleMs,
      )}, file intact, all deleted, no leftovers`,
    };
  };

  it("kill -9 of the agent during fork", async () => {
    await table.cell("kill -9 agent", "fork", async () => {
      const { seen, outcome } = await forkWith(async () => {
        await agent.kill();
        await agent.start();
      });
      return { trigger: seen ? "the fork's record appears in the data dir" : "never seen", outcome };
    });
  }, 180_000);

  /** SIGKILLs every QEMU of `id`; true when there was one. */
  const killQemu = (id: string): boolean => {
    const pids = agent.qemuOf(id);
    for (const pid of pids) process.kill(pid, "SIGKILL");
    return pids.length > 0;
  };

  it("kill -9 of a running sandbox's QEMU", async () => {
    await table.cell("kill -9 QEMU", "running", async () => {
      const s: Sandbox = await stack.create();
      await stack.writeFile(s.id, "before.bin");
      killQemu(s.id);
      const started = Date.now();
      const noticed = await until(
        async () =>
          (await stack.db.query<{ state: string }>("SELECT state FROM sandboxes WHERE id = $1", [s.id]))[0]
            ?.state === "error",
        30_000,
        50,
      );
      if (!noticed) throw new Error("the row did not become error within 30 s of the QEMU's death");
      const noticedS = (Date.now() - started) / 1000;
      const after = await check(new Map());
      return {
        trigger: "the sandbox runs (a file written)",
        outcome: `row error ${noticedS.toFixed(1)} s after the kill; ${settledText(fresh(after), after.settleMs)}, deleted, no leftovers`,
      };
    });
  }, 180_000);

  it("kill -9 of the QEMU during create", async () => {
    await table.cell("kill -9 QEMU", "create", async () => {
      const before = new Set(agent.sandboxDirs());
      const request = answerOf(stack.api.call("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 }));
      const seen = await until(async () => killQemu(newDir(before) ?? "-"), 30_000, 5);
      const answer = await request;
      const after = await check(new Map());
      return {
        trigger: seen ? "the new sandbox's QEMU started" : "no QEMU seen",
        outcome: outcomeOf(answer, after),
      };
    });
  }, 180_000);

  it("kill -9 of the QEMU during resume", async () => {
    await table.cell("kill -9 QEMU", "resume", async () => {
      const s = await stack.create();
      const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
      await stack.step(s.id, "pause");
      const request = answerOf(stack.api.call("POST", `/v1/sandboxes/${s.id}/resume`, {}));
      const seen = await until(async () => killQemu(s.id), 30_000, 5);
      const answer = await request;
      // Still paused (the resume failed): its data is still there on the next resume.
      const after = await check(files);
      return {
        trigger: seen ? "the sandbox's QEMU started (resume under way)" : "no QEMU seen",
        outcome: `${outcomeOf(answer, after, (id) => id === s.id)}; file written before intact`,
      };
    });
  }, 180_000);

  it("kill -9 of the fork's QEMU during fork", async () => {
    await table.cell("kill -9 QEMU", "fork", async () => {
      let killed = false;
      const { seen, outcome } = await forkWith(async (forkId) => {
        killed = await until(async () => killQemu(forkId), 30_000, 5);
      });
      return { trigger: seen && killed ? "the fork's QEMU started" : "no fork QEMU seen", outcome };
    });
  }, 180_000);
});
