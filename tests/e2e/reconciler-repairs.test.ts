import { bootstrapAdminTeam, type ControlPlane, createControlPlane } from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, startAgent } from "./agent-fixture.js";
import { apiCaller } from "./api-caller.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

type Sandbox = { id: string; host_id: string; state: string; error?: string | null };

const DEADLINE_MS = 1500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * What a control plane killed mid-operation leaves, settled by the reconciler over a real
 * agent (real VMs) and the control plane's real database. Each case puts the database and
 * the agent in the state the kill leaves them in (the agent's side made through its own
 * RPCs), waits out the deadline and runs the workers once.
 */
describe("reconciler repairs after a control plane died mid-operation", () => {
  let fx: AgentFixture;
  let cp: ControlPlane;
  let key = "";

  const api = apiCaller(
    () => cp.url,
    () => key,
  );
  const create = async (): Promise<Sandbox> => {
    const res = await api<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    return res.body;
  };
  const onAgent = async () => (await fx.client.listSandboxes({})).sandboxes.map((s) => s.sandboxId);
  const setRowState = (id: string, state: string) =>
    sql`UPDATE sandboxes SET state = ${state}, updated_at = now() WHERE id = ${id}`.execute(cp.database.db);

  beforeAll(async () => {
    fx = await startAgent({ netNamePrefix: "wflt", firstSlot: 6200, maxSlots: 4, hostId: "flt-host" });
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        pingTimeoutMs: 2000,
        transitionDeadlineMs: DEADLINE_MS,
        orphanGraceMs: DEADLINE_MS,
      },
      workers: false,
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    key = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const host = await api<{ registration_token: string }>("POST", "/v1/hosts", {
      name: "flt",
      shared: true,
    });
    const reg = await api("POST", "/v1/hosts/register", {
      token: host.body.registration_token,
      url: `http://127.0.0.1:${fx.agent.port}`,
      agent_token: fx.token,
    });
    expect(reg.status).toBe(200);
  }, 120_000);

  afterAll(async () => {
    await cp?.stop();
    await fx?.close();
    if (fx) expect(findHostLeftovers(fx.dataDir, "wflt")).toEqual(NO_LEFTOVERS);
  });

  it("a create left pending whose VM the agent runs becomes running once past the deadline", async () => {
    const s = await create();
    // The control plane died after the agent's CreateSandbox answered, before the row moved on.
    await setRowState(s.id, "pending");
    await cp.runWorkersOnce();
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body.state).toBe("pending");
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body.state).toBe("running");
    const ran = await api<{ stdout: string }>("POST", `/v1/sandboxes/${s.id}/exec`, { command: "echo up" });
    expect(ran.body.stdout).toBe("up\n");
    expect((await api("DELETE", `/v1/sandboxes/${s.id}`)).status).toBe(204);
  }, 180_000);

  it("a create left pending that the agent never made becomes error, and is deletable", async () => {
    const s = await create();
    // The control plane died before (or while) asking the agent: the agent has nothing of it.
    await fx.client.destroySandbox({ sandboxId: s.id });
    await setRowState(s.id, "pending");
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    const after = (await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body;
    expect(after.state).toBe("error");
    expect(after.error).toMatch(/did not finish/);
    expect((await api("DELETE", `/v1/sandboxes/${s.id}`)).status).toBe(204);
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body.state).toBe("stopped");
  }, 180_000);

  it("leaves a pause whose call has not reached the agent yet; settles it past the deadline or once its replica is dead", async () => {
    const s = await create();
    // What the pause call writes before it asks the agent; the agent still runs the sandbox.
    const markPaused = (replica: string) =>
      sql`UPDATE sandboxes SET state = 'paused', operation = 'pause', operation_started_at = now(),
        operation_replica = ${replica}, updated_at = now() WHERE id = ${s.id}`.execute(cp.database.db);
    const state = async () => (await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body.state;
    await markPaused(cp.replicaId);
    await sleep(50);
    await cp.runWorkersOnce();
    expect(await state()).toBe("paused");
    // A call that never ended: the agent's state wins after the deadline, and the mark goes.
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    expect(await state()).toBe("running");
    const marked = async () =>
      (
        await sql<{
          n: number;
        }>`SELECT count(*)::int AS n FROM sandboxes WHERE operation IS NOT NULL`.execute(cp.database.db)
      ).rows[0]?.n;
    expect(await marked()).toBe(0);
    // The mark of a replica that is gone does not wait for the deadline: its call died with it.
    await markPaused("rep_gone");
    await sleep(50);
    await cp.runWorkersOnce();
    expect(await state()).toBe("running");
    // A real pause and resume leave no mark.
    expect((await api("POST", `/v1/sandboxes/${s.id}/pause`, {})).status).toBe(200);
    expect((await api("POST", `/v1/sandboxes/${s.id}/resume`, {})).status).toBe(200);
    expect(await marked()).toBe(0);
    expect((await api("DELETE", `/v1/sandboxes/${s.id}`)).status).toBe(204);
  }, 180_000);

  it("destroys a VM whose row is stopped (killed between 'stopped' and the agent's destroy)", async () => {
    const s = await create();
    await setRowState(s.id, "stopped");
    expect(await onAgent()).toContain(s.id);
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    expect(await onAgent()).not.toContain(s.id);
  }, 180_000);

  it("destroys forks the agent made whose rows were never written, and keeps the source", async () => {
    const s = await create();
    // The control plane died after the agent's ForkSandbox answered, before inserting rows.
    const forked = await fx.client.forkSandbox({ sandboxId: s.id, count: 1 });
    const forkId = forked.sandboxes[0]?.sandboxId ?? "";
    expect(forkId).not.toBe("");
    // Inside the grace a fork's rows may still be on their way: it stays.
    await cp.runWorkersOnce();
    expect(await onAgent()).toContain(forkId);
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    const left = await onAgent();
    expect(left).not.toContain(forkId);
    expect(left).toContain(s.id);
    expect((await api<Sandbox>("GET", `/v1/sandboxes/${s.id}`)).body.state).toBe("running");
    expect((await api("DELETE", `/v1/sandboxes/${s.id}`)).status).toBe(204);
  }, 180_000);

  it("removes a snapshot template whose snapshot never reached the agent, keeps a real one", async () => {
    const s = await create();
    const real = await api("POST", "/v1/snapshots", { sandbox_id: s.id, name: "flt-real" });
    expect(real.status, JSON.stringify(real.body)).toBe(201);
    // The row a snapshot call writes before asking the agent, left by a control plane that died.
    const teamId = (
      await cp.database.db
        .selectFrom("templates")
        .select("team_id")
        .where("name", "=", "flt-real")
        .executeTakeFirstOrThrow()
    ).team_id;
    await sql`INSERT INTO templates (id, team_id, name, kind, host_id, agent_name, source_sandbox_id, image)
      SELECT 'tpl_fltorphan', ${teamId}, 'flt-orphan', 'snapshot', host_id, 'sfltorphan0000000000', ${s.id}, 'base'
      FROM sandboxes WHERE id = ${s.id}`.execute(cp.database.db);
    const names = async () =>
      (await api<{ items: { name: string }[] }>("GET", "/v1/snapshots")).body.items.map((t) => t.name);
    expect(await names()).toEqual(expect.arrayContaining(["flt-real", "flt-orphan"]));
    await sleep(DEADLINE_MS + 200);
    await cp.runWorkersOnce();
    expect(await names()).toEqual(["flt-real"]);
    expect((await api("DELETE", `/v1/sandboxes/${s.id}`)).status).toBe(204);
    expect((await api("DELETE", "/v1/snapshots/flt-real")).status).toBe(204);
  }, 180_000);
});
