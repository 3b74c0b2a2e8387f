import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "../e2e/agent-fixture.js";
import { CpProcess, createFaultDatabase, type FaultDatabase } from "./cp-process.js";
import { FaultTable } from "./fault-table.js";
import { checkAfterFault, type FaultApi, faultApi, type SandboxRowState } from "./invariants.js";

const PREFIX = "wflt";
type Sandbox = { id: string; state: string };
type Exec = { exit_code: number; stdout: string; stderr: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 10 ms until it is true; false after `timeoutMs`. */
async function until(probe: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return true;
    await sleep(10);
  }
  return false;
}

/**
 * kill -9 of the control plane (a `wrenn-cp serve` child on PostgreSQL) in the middle of a
 * create, a pause and a resume, while its host agent (real VMs) keeps running; the control
 * plane is started again and the invariants are checked (tests/faults/invariants.ts). Then
 * 20 pause/resume rounds that check every file written before each pause.
 */
describe("fault suite: control plane killed mid-operation", () => {
  const table = new FaultTable();
  let fx: AgentFixture;
  let db: FaultDatabase;
  let cp: CpProcess;
  let api: FaultApi;

  const create = async (): Promise<Sandbox> => {
    const res = await api.call<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const exec = async (id: string, command: string): Promise<Exec> => {
    const res = await api.call<Exec>("POST", `/v1/sandboxes/${id}/exec`, { command });
    if (res.status !== 200) throw new Error(`exec in ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  /** Writes 1 MiB of random bytes to `name` in the guest and returns its sha256sum line. */
  const writeFile = async (id: string, name: string): Promise<string> => {
    const res = await exec(
      id,
      `head -c 1048576 /dev/urandom > /home/user/${name} && sync && sha256sum /home/user/${name}`,
    );
    if (res.exit_code !== 0) throw new Error(`write ${name}: ${res.stderr}`);
    return res.stdout.trim();
  };
  /** Checks every sha256sum line in the guest; throws naming the first file that differs. */
  const verifyFiles = async (id: string, lines: string[]): Promise<void> => {
    const res = await exec(
      id,
      `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(" ")} | sha256sum -c --quiet`,
    );
    if (res.exit_code !== 0) throw new Error(`files changed in ${id}: ${res.stdout}${res.stderr}`);
  };
  const agentBusy = async (id: string) =>
    (await fx.client.listSandboxes({})).sandboxes.some((s) => s.sandboxId === id && s.busy);
  /** A running sandbox's data is there; a paused one is resumed first. */
  const dataCheck = (files: Map<string, string[]>) => async (row: SandboxRowState) => {
    if (row.state === "paused") {
      const res = await api.call("POST", `/v1/sandboxes/${row.id}/resume`, {});
      if (res.status !== 200) throw new Error(`resume ${row.id}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    const lines = files.get(row.id);
    if (lines) await verifyFiles(row.id, lines);
    else if ((await exec(row.id, "echo ok")).stdout !== "ok\n")
      throw new Error(`${row.id} does not run commands`);
  };
  const settledOutcome = (states: SandboxRowState[], settleMs: number) =>
    `${states.map((s) => s.state).join(",") || "no row"} after restart (settled in ${(settleMs / 1000).toFixed(1)} s), deleted, no leftovers`;

  beforeAll(async () => {
    fx = await startAgent({ netNamePrefix: PREFIX, firstSlot: 6210, maxSlots: 4, hostId: "flt-fault-host" });
    db = await createFaultDatabase();
    cp = await CpProcess.create(db.url);
    const key = cp.bootstrap();
    await cp.start();
    api = faultApi(() => cp.url, key);
    const host = await api.call<{ registration_token: string }>("POST", "/v1/hosts", {
      name: "flt",
      shared: true,
    });
    const reg = await api.call("POST", "/v1/hosts/register", {
      token: host.body.registration_token,
      url: `http://127.0.0.1:${fx.agent.port}`,
      agent_token: fx.token,
    });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);
  }, 180_000);

  afterAll(async () => {
    table.print("kill -9 of the control plane (one replica, PostgreSQL, real agent and VMs)");
    await cp?.close();
    await fx?.close();
    await db?.drop();
  }, 120_000);

  /**
   * Sends a create, SIGKILLs the control plane once `trigger` fires, starts it again and
   * checks the invariants. The request's own answer is lost with its process.
   */
  const killDuringCreate = async (trigger: (before: Set<string>) => Promise<boolean>, name: string) => {
    const before = new Set((await db.query<{ id: string }>("SELECT id FROM sandboxes")).map((r) => r.id));
    const request = create().then(
      () => "answered",
      () => "lost",
    );
    const fired = await until(() => trigger(before), 60_000);
    await cp.kill();
    const answer = await request;
    await cp.start();
    const after = await checkAfterFault({ db, api, agent: fx, prefix: PREFIX, verify: dataCheck(new Map()) });
    const fresh = after.states.filter((s) => !before.has(s.id));
    return {
      trigger: fired ? name : `${name} (never seen; killed after the call)`,
      outcome: `request ${answer}; ${settledOutcome(fresh, after.settleMs)}`,
    };
  };

  it("kill -9 during create, once the row is written", async () => {
    await table.cell("kill -9 control plane", "create", () =>
      killDuringCreate(
        async (before) =>
          (await db.query<{ id: string }>("SELECT id FROM sandboxes")).some((r) => !before.has(r.id)),
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
    const s = await create();
    const files = new Map([[s.id, [await writeFile(s.id, "before.bin")]]]);
    if (step === "resume") {
      const paused = await api.call("POST", `/v1/sandboxes/${s.id}/pause`, {});
      if (paused.status !== 200) throw new Error(`pause: ${paused.status} ${JSON.stringify(paused.body)}`);
    }
    const request = api.call("POST", `/v1/sandboxes/${s.id}/${step}`, {}).then(
      (r) => String(r.status),
      () => "lost",
    );
    const fired = await until(() => agentBusy(s.id), 30_000);
    await cp.kill();
    const answer = await request;
    await cp.start();
    const after = await checkAfterFault({ db, api, agent: fx, prefix: PREFIX, verify: dataCheck(files) });
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
      const s = await create();
      const files = new Map([[s.id, [await writeFile(s.id, "before.bin")]]]);
      const request = api.call("POST", "/v1/snapshots", { sandbox_id: s.id, name: "flt-snap" }).then(
        (r) => String(r.status),
        () => "lost",
      );
      const fired = await until(() => agentBusy(s.id), 30_000);
      await cp.kill();
      const answer = await request;
      await cp.start();
      // Within the deadline every snapshot template row names a snapshot its agent holds.
      type Row = { name: string; agent_name: string };
      const settled = await until(async () => {
        const held = new Set((await fx.client.listSnapshots({})).snapshots.map((t) => t.name));
        const rows = await db.query<Row>("SELECT name, agent_name FROM templates WHERE kind = 'snapshot'");
        return rows.every((r) => held.has(r.agent_name));
      }, 30_000);
      if (!settled) throw new Error("a snapshot template row names a snapshot its agent does not hold");
      const rows = await db.query<Row>("SELECT name, agent_name FROM templates WHERE kind = 'snapshot'");
      const after = await checkAfterFault({ db, api, agent: fx, prefix: PREFIX, verify: dataCheck(files) });
      for (const r of rows) {
        const res = await api.call("DELETE", `/v1/snapshots/${r.name}`);
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
      const s = await create();
      const files = new Map([[s.id, [await writeFile(s.id, "before.bin")]]]);
      const request = api.call("POST", `/v1/sandboxes/${s.id}/fork`, { count: 1 }).then(
        (r) => String(r.status),
        () => "lost",
      );
      const fired = await until(
        async () => (await fx.client.listSandboxes({})).sandboxes.some((x) => x.sandboxId !== s.id),
        60_000,
      );
      await cp.kill();
      const answer = await request;
      await cp.start();
      const after = await checkAfterFault({ db, api, agent: fx, prefix: PREFIX, verify: dataCheck(files) });
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
      const s = await create();
      const lines: string[] = [];
      for (let round = 0; round < 20; round++) {
        lines.push(await writeFile(s.id, `round-${round}.bin`));
        const paused = await api.call<Sandbox>("POST", `/v1/sandboxes/${s.id}/pause`, {});
        if (paused.status !== 200)
          throw new Error(`round ${round} pause: ${paused.status} ${JSON.stringify(paused.body)}`);
        const resumed = await api.call<Sandbox>("POST", `/v1/sandboxes/${s.id}/resume`, {});
        if (resumed.status !== 200)
          throw new Error(`round ${round} resume: ${resumed.status} ${JSON.stringify(resumed.body)}`);
        try {
          await verifyFiles(s.id, lines);
        } catch (err) {
          throw new Error(`round ${round + 1}: ${(err as Error).message}`);
        }
      }
      await checkAfterFault({ db, api, agent: fx, prefix: PREFIX });
      return { trigger: "-", outcome: "20/20 rounds: every earlier file's sha256 matched after each resume" };
    });
  }, 600_000);
});
