import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "../e2e/agent-fixture.js";
import { CpProcess, createFaultDatabase, type FaultDatabase } from "./cp-process.js";
import { type Exec, type Sandbox, sleep, until } from "./fault-stack.js";
import { FaultTable } from "./fault-table.js";
import { checkAfterFault, type FaultApi, faultApi, waitSettled } from "./invariants.js";

const PREFIX = "wflt";
// Short leases so a killed replica's workers move within a few seconds.
const REPLICA_ENV = { WRENN_CP_LEASE_TTL_MS: "3000", WRENN_CP_LEASE_RENEW_MS: "1000" };

/**
 * Two control-plane replicas (child processes on one PostgreSQL database) and two host agents
 * (real VMs): requests alternated between the replicas, then one replica SIGKILLed in the middle
 * of a burst while the other finishes the work and takes its background workers over.
 */
describe("fault suite: two control-plane replicas, one killed mid-burst", () => {
  const table = new FaultTable();
  const agents: AgentFixture[] = [];
  const hostIds: string[] = [];
  let db: FaultDatabase;
  let cpA: CpProcess;
  let cpB: CpProcess;
  let apiA: FaultApi;
  let apiB: FaultApi;
  let replicaA = "";
  let replicaB = "";
  const sandboxes: Sandbox[] = [];

  const create = async (api: FaultApi): Promise<Sandbox> => {
    const res = await api.call<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const exec = async (api: FaultApi, id: string, command: string): Promise<Exec> => {
    const res = await api.call<Exec>("POST", `/v1/sandboxes/${id}/exec`, { command });
    if (res.status !== 200) throw new Error(`exec in ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  };
  const listIds = async (api: FaultApi): Promise<string[]> => {
    const res = await api.call<{ items: Sandbox[] }>("GET", "/v1/sandboxes");
    if (res.status !== 200) throw new Error(`list: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.items.map((s) => s.id).sort();
  };
  const leaseHolders = async () =>
    db.query<{ name: string; holder: string }>("SELECT name, holder FROM worker_leases ORDER BY name");
  const replicaIds = async () => (await db.query<{ id: string }>("SELECT id FROM replicas")).map((r) => r.id);

  beforeAll(async () => {
    agents.push(
      await startAgent({ netNamePrefix: PREFIX, firstSlot: 6230, maxSlots: 4, hostId: "flt-rep-host-1" }),
      await startAgent({ netNamePrefix: PREFIX, firstSlot: 6240, maxSlots: 4, hostId: "flt-rep-host-2" }),
    );
    db = await createFaultDatabase();
    cpA = await CpProcess.create(db.url, REPLICA_ENV);
    cpB = await CpProcess.create(db.url, REPLICA_ENV);
    const key = cpA.bootstrap();
    // A starts alone, so every leader-only worker's lease is A's before B comes up.
    // (its replica row and leases are written by its first heartbeat, just after it listens).
    await cpA.start();
    await until(async () => (await replicaIds()).length === 1 && (await leaseHolders()).length > 0, 15_000);
    await sleep(1500);
    replicaA = (await replicaIds())[0] ?? "";
    await cpB.start();
    await until(async () => (await replicaIds()).length === 2, 15_000);
    replicaB = (await replicaIds()).find((id) => id !== replicaA) ?? "";
    expect(replicaA && replicaB, "both replicas heartbeat").toBeTruthy();
    apiA = faultApi(() => cpA.url, key);
    apiB = faultApi(() => cpB.url, key);
    for (const [i, fx] of agents.entries()) {
      const host = await apiA.call<{ host: { id: string }; registration_token: string }>(
        "POST",
        "/v1/hosts",
        {
          name: `flt-rep-${i + 1}`,
          shared: true,
        },
      );
      expect(host.status, JSON.stringify(host.body)).toBe(201);
      hostIds.push(host.body.host.id);
      const reg = await apiA.call("POST", "/v1/hosts/register", {
        token: host.body.registration_token,
        url: `http://127.0.0.1:${fx.agent.port}`,
        agent_token: fx.token,
      });
      expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    }
  }, 180_000);

  afterAll(async () => {
    table.print("two control-plane replicas on one PostgreSQL, two agents, one replica killed");
    await cpA?.close();
    await cpB?.close();
    for (const fx of agents) await fx.close();
    await db?.drop();
  }, 120_000);

  it("requests alternated between replicas", async () => {
    await table.cell("none (two replicas)", "create, exec, list alternated", async () => {
      for (let i = 0; i < 4; i++) sandboxes.push(await create(i % 2 === 0 ? apiA : apiB));
      for (const [i, s] of sandboxes.entries()) {
        const out = await exec(i % 2 === 0 ? apiB : apiA, s.id, `echo hello-${i}`);
        expect(out.stdout).toBe(`hello-${i}\n`);
      }
      const ids = sandboxes.map((s) => s.id).sort();
      expect(await listIds(apiA)).toEqual(ids);
      expect(await listIds(apiB)).toEqual(ids);
      for (const s of sandboxes) expect(hostIds).toContain(s.host_id);
      const used = new Set(sandboxes.map((s) => s.host_id)).size;
      const holders = new Set((await leaseHolders()).map((l) => l.holder));
      expect([...holders]).toEqual([replicaA]);
      return {
        trigger: "-",
        outcome: `4 creates A/B/A/B, each exec'd through the other replica; both list the same 4; placed on ${used} of 2 hosts; leader-only workers on A`,
      };
    });
  }, 120_000);

  it("kill -9 of one replica mid-burst: the other finishes the work and takes the workers", async () => {
    await table.cell("kill -9 replica A", "burst of creates and execs", async () => {
      const [s0, s1] = sandboxes as [Sandbox, Sandbox];
      const before = (await db.query<{ n: string }>("SELECT count(*) AS n FROM sandboxes"))[0]?.n;
      const outcome = <T>(p: Promise<T>) =>
        p.then(
          (value) => ({ ok: true as const, value }),
          (error: Error) => ({ ok: false as const, error }),
        );
      const createA = outcome(create(apiA));
      const execA = outcome(exec(apiA, s0.id, "sleep 1; echo a"));
      const createB = outcome(create(apiB));
      const execB = outcome(exec(apiB, s1.id, "sleep 1; echo b"));
      // Kill A once the burst has reached the database (a create row written).
      await until(
        async () => (await db.query<{ n: string }>("SELECT count(*) AS n FROM sandboxes"))[0]?.n !== before,
        10_000,
      );
      const killedAt = Date.now();
      await cpA.kill();
      const [createdB, execedB] = await Promise.all([createB, execB]);
      if (!createdB.ok) throw new Error(`create through B failed: ${createdB.error.message}`);
      if (!execedB.ok) throw new Error(`exec through B failed: ${execedB.error.message}`);
      expect(execedB.value.stdout).toBe("b\n");
      const [createdA, execedA] = await Promise.all([createA, execA]);
      const lostA = [createdA.ok, execedA.ok].filter((ok) => !ok).length;
      // What A lost is sent again to B.
      sandboxes.push(createdA.ok ? createdA.value : await create(apiB), createdB.value);
      if (!execedA.ok) expect((await exec(apiB, s0.id, "echo a")).stdout).toBe("a\n");
      // Every leader-only worker moves to B within the lease TTL and a renewal.
      const names = (await leaseHolders()).map((l) => l.name);
      const movedIn = await until(async () => {
        const rows = await leaseHolders();
        return rows.length === names.length && rows.every((l) => l.holder === replicaB);
      }, 15_000);
      if (!movedIn) throw new Error(`leases not taken over: ${JSON.stringify(await leaseHolders())}`);
      const takeoverS = (Date.now() - killedAt) / 1000;
      // A row A left pending is settled by B's reconciler (running or error) within the deadline.
      const settleStarted = Date.now();
      const states = await waitSettled(db, 30_000);
      const settleS = (Date.now() - settleStarted) / 1000;
      const left = states.filter((r) => !sandboxes.some((x) => x.id === r.id));
      for (const r of states) expect(["running", "error"]).toContain(r.state);
      return {
        trigger: "a create row written by the burst",
        outcome: `2/2 requests to B answered; ${lostA}/2 to A lost, resent to B and answered; ${names.length} leader-only leases on B ${takeoverS.toFixed(1)} s after the kill; ${left.length} row(s) left by A with no answer (${left.map((s) => s.state).join(",") || "none"}) settled by B ${settleS.toFixed(1)} s after the takeover; all ${states.length} rows running or error`,
      };
    });
  }, 120_000);

  it("everything deleted through the surviving replica leaves nothing on either agent", async () => {
    await table.cell("kill -9 replica A", "delete all through B", async () => {
      const first = await checkAfterFault({
        db,
        api: apiB,
        agent: agents[0] as AgentFixture,
        prefix: PREFIX,
      });
      await checkAfterFault({ db, api: apiB, agent: agents[1] as AgentFixture, prefix: PREFIX });
      const listed = await apiB.call<{ items: Sandbox[] }>("GET", "/v1/sandboxes");
      expect(listed.body.items.filter((s) => s.state !== "stopped")).toEqual([]);
      return {
        trigger: "-",
        outcome: `${first.states.filter((s) => s.state !== "stopped").length} sandboxes deleted through B; no VM, namespace, file, slot or cgroup left on either agent`,
      };
    });
  }, 120_000);
});
