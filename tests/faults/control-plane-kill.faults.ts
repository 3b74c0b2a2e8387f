import { afterAll, beforeAll, describe, it } from "vitest";
import { type AgentFixture, startAgent } from "../e2e/agent-fixture.js";
import { answerOf, FAULT_PREFIX, FaultStack, settledText, until } from "./fault-stack.js";
import { FaultTable } from "./fault-table.js";
import type { SandboxRowState } from "./invariants.js";

/**
 * kill -9 of the control plane (a `wrenn-cp serve` child on PostgreSQL) in the middle of a
 * create, a pause and a resume, while its host agent (real VMs) keeps running; the control
 * plane is started again and the invariants are checked (tests/faults/invariants.ts). Then
 * 20 pause/resume rounds that check every file written before each pause.
 */
describe("fault suite: control plane killed mid-operation", () => {
  const table = new FaultTable();
  let fx: AgentFixture;
  let stack: FaultStack;

  const agentBusy = async (id: string) =>
    (await fx.client.listSandboxes({})).sandboxes.some((s) => s.sandboxId === id && s.busy);
  const settledOutcome = (states: SandboxRowState[], settleMs: number) =>
    `${settledText(states, settleMs).replace(" (settled", " after restart (settled")}, deleted, no leftovers`;
  const check = (files: Map<string, string[]>) => stack.check(fx, files);

  beforeAll(async () => {
    fx = await startAgent({
      netNamePrefix: FAULT_PREFIX,
      firstSlot: 6210,
      maxSlots: 4,
      hostId: "flt-fault-host",
    });
    stack = await FaultStack.start([{ port: fx.agent.port, token: fx.token }]);
  }, 180_000);

  afterAll(async () => {
    table.print("kill -9 of the control plane (one replica, PostgreSQL, real agent and VMs)");
    await stack?.close();
    await fx?.close();
  }, 120_000);

  /**
   * Sends a create, SIGKILLs the control plane once `trigger` fires, starts it again and
   * checks the invariants. The request's own answer is lost with its process.
   */
  const killDuringCreate = async (trigger: (before: Set<string>) => Promise<boolean>, name: string) => {
    const before = await stack.rowIds();
    const request = stack.create().then(
      () => "answered",
      () => "lost",
    );
    const fired = await until(() => trigger(before), 60_000);
    await stack.cp.kill();
    const answer = await request;
    await stack.cp.start();
    const after = await check(new Map());
    const fresh = after.states.filter((s) => !before.has(s.id));
    return {
      trigger: fired ? name : `${name} (never seen; killed after the call)`,
      outcome: `request ${answer}; ${settledOutcome(fresh, after.settleMs)}`,
    };
  };

  it("kill -9 during create, once the row is written", async () => {
    await table.cell("kill -9 control plane", "create", () =>
      killDuringCreate(
        async (before) => [...(await stack.rowIds())].some((id) => !before.has(id)),
        "row pending in the database",
      ),
    );
  }, 180_000);

  it("kill -9 during create, while the agent is creating", async () => {
    await table.cell("kill -9 control plane", "create", () =>
      killDuringCreate(
        async (before) => (await fx.client.listSandboxes({})).sandboxes.some((s) => !before.has(s.sandboxId)),
        "agent lists the new sandbox",
      ),
    );
  }, 180_000);

  const killDuring = async (step: "pause" | "resume") => {
    const s = await stack.create();
    const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
    if (step === "resume") await stack.step(s.id, "pause");
    const request = answerOf(stack.api.call("POST", `/v1/sandboxes/${s.id}/${step}`, {}));
    const fired = await until(() => agentBusy(s.id), 30_000);
    await stack.cp.kill();
    const answer = await request;
    await stack.cp.start();
    const after = await check(files);
    return {
      trigger: fired
        ? `agent reports the sandbox busy (${step} under way)`
        : "never busy; killed after the call",
      outcome: `request ${answer}; ${settledOutcome(
        after.states.filter((r) => r.id === s.id),
        after.settleMs,
      )}; file written before intact`,
    };
  };

  it("kill -9 during pause", async () => {
    await table.cell("kill -9 control plane", "pause", () => killDuring("pause"));
  }, 180_000);

  it("kill -9 during resume", async () => {
    await table.cell("kill -9 control plane", "resume", () => killDuring("resume"));
  }, 180_000);

  it("kill -9 during snapshot", async () => {
    await table.cell("kill -9 control plane", "snapshot", async () => {
      const s = await stack.create();
      const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
      const request = answerOf(
        stack.api.call("POST", "/v1/snapshots", { sandbox_id: s.id, name: "flt-snap" }),
      );
      const fired = await until(() => agentBusy(s.id), 30_000);
      await stack.cp.kill();
      const answer = await request;
      await stack.cp.start();
      // Within the deadline every snapshot template row names a snapshot its agent holds.
      type Row = { name: string; agent_name: string };
      const settled = await until(async () => {
        const held = new Set((await fx.client.listSnapshots({})).snapshots.map((t) => t.name));
        const rows = await stack.db.query<Row>(
          "SELECT name, agent_name FROM templates WHERE kind = 'snapshot'",
        );
        return rows.every((r) => held.has(r.agent_name));
      }, 30_000);
      if (!settled) throw new Error("a snapshot template row names a snapshot its agent does not hold");
      const rows = await stack.db.query<Row>(
        "SELECT name, agent_name FROM templates WHERE kind = 'snapshot'",
      );
      const after = await check(files);
      for (const r of rows) {
        const res = await stack.api.call("DELETE", `/v1/snapshots/${r.name}`);
        if (res.status !== 204)
          throw new Error(`DELETE snapshot ${r.name}: ${res.status} ${JSON.stringify(res.body)}`);
      }
      const leftSnapshots = (await fx.client.listSnapshots({})).snapshots.map((t) => t.name);
      if (leftSnapshots.length > 0)
        throw new Error(`the agent still holds snapshots ${leftSnapshots.join(", ")}`);
      return {
        trigger: fired
          ? "agent reports the sandbox busy (snapshot under way)"
          : "never busy; killed after the call",
        outcome: `request ${answer}; template ${rows.length > 0 ? "kept (the agent finished it)" : "row removed"}; source ${settledOutcome(
          after.states.filter((r) => r.id === s.id),
          after.settleMs,
        )}; file intact`,
      };
    });
  }, 180_000);

  it("kill -9 during fork", async () => {
    await table.cell("kill -9 control plane", "fork", async () => {
      const s = await stack.create();
      const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
      const request = answerOf(stack.api.call("POST", `/v1/sandboxes/${s.id}/fork`, { count: 1 }));
      const fired = await until(
        async () => (await fx.client.listSandboxes({})).sandboxes.some((x) => x.sandboxId !== s.id),
        60_000,
      );
      await stack.cp.kill();
      const answer = await request;
      await stack.cp.start();
      const after = await check(files);
      const forkRows = after.states.filter((r) => r.id !== s.id && r.state !== "stopped").length;
      return {
        trigger: fired ? "agent lists the fork" : "fork never seen; killed after the call",
        outcome: `request ${answer}; ${forkRows > 0 ? "fork row written before the kill" : "the agent's fork had no row: destroyed by the reconciler"}; source ${settledOutcome(
          after.states.filter((r) => r.id === s.id),
          after.settleMs,
        )}`,
      };
    });
  }, 180_000);

  it("no file written before a successful pause is lost: 20 pause/resume rounds", async () => {
    await table.cell("none (20 rounds)", "pause + resume", async () => {
      const s = await stack.create();
      const lines: string[] = [];
      for (let round = 0; round < 20; round++) {
        lines.push(await stack.writeFile(s.id, `round-${round}.bin`));
        try {
          await stack.step(s.id, "pause");
          await stack.step(s.id, "resume");
          await stack.verifyFiles(s.id, lines);
        } catch (err) {
          throw new Error(`round ${round + 1}: ${(err as Error).message}`);
        }
      }
      await check(new Map());
      return { trigger: "-", outcome: "20/20 rounds: every earlier file's sha256 matched after each resume" };
    });
  }, 600_000);
});
