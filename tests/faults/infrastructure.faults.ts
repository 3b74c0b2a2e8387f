import { afterAll, beforeAll, beforeEach, describe, it } from "vitest";
import { type AgentFixture, startAgent } from "../e2e/agent-fixture.js";
import { FAULT_PREFIX, FaultStack, type Sandbox, settledText, sleep, until } from "./fault-stack.js";
import { FaultTable } from "./fault-table.js";
import { LinkDrop, restartPostgres, SmallDisk } from "./host-injectors.js";
import { type AfterFault, waitSettled } from "./invariants.js";

/** How long a host may miss its heartbeats before it is unreachable (the link-drop cell waits it out). */
const HOST_DEADLINE_MS = 4000;
type ErrorBody = { error?: { code?: string; message?: string } };

/**
 * The machine under the control plane and its agent failing: PostgreSQL restarted in the
 * middle of a create and of a burst of reads, the agent's data dir (a small tmpfs) full when a
 * pause writes its snapshot, and the link from the control plane to the agent dropped
 * (iptables) and restored. One agent and one control plane for every cell; the invariants of
 * tests/faults/invariants.ts after each.
 */
describe("fault suite: PostgreSQL restarted, data dir full, link to the agent dropped", () => {
  const table = new FaultTable();
  let disk: SmallDisk;
  let fx: AgentFixture;
  let stack: FaultStack;
  let link: LinkDrop;
  let hostId = "";

  let rowsBefore = new Set<string>();
  beforeEach(async () => {
    rowsBefore = await stack.rowIds();
  });
  const fresh = (after: AfterFault) => after.states.filter((r) => !rowsBefore.has(r.id));
  const check = (files = new Map<string, string[]>()) => stack.check(fx, files);
  /** "201", or "503 unavailable" for an error answer. */
  const statusText = (res: { status: number; body: unknown }) =>
    res.status < 300
      ? String(res.status)
      : `${res.status} ${(res.body as ErrorBody)?.error?.code ?? ""}`.trim();
  /** Throws unless the answer is a success or a server-side error a client retries (5xx). */
  const expectRetryable = (what: string, res: { status: number; body: unknown }) => {
    if (res.status < 300 || res.status >= 500) return;
    throw new Error(`${what}: ${res.status} ${JSON.stringify(res.body)} is neither a success nor retryable`);
  };
  const hostState = async () =>
    (await stack.db.query<{ state: string }>("SELECT state FROM hosts WHERE id = $1", [hostId]))[0]?.state;

  beforeAll(async () => {
    // The agent's whole data dir (records, disk layers, memory snapshots) on 1 GiB of tmpfs.
    disk = SmallDisk.create(1024);
    fx = await startAgent(
      // Overlays are thin: the host offers 16 × 1 GiB of disk, room for every cell's sandboxes.
      { netNamePrefix: FAULT_PREFIX, firstSlot: 6410, maxSlots: 4, hostId: "flt-infra", diskOvercommit: 16 },
      { dataDir: disk.path },
    );
    stack = await FaultStack.start([], { WRENN_CP_HOST_DEADLINE_MS: String(HOST_DEADLINE_MS) });
    hostId = await stack.registerHost("flt-infra", { port: fx.agent.port, token: fx.token });
    link = new LinkDrop([fx.agent.port, fx.agent.trafficPort]);
  }, 180_000);

  afterAll(async () => {
    table.print(
      "PostgreSQL restarted, the agent's data dir full, the control plane's link to the agent dropped",
    );
    link?.close();
    await stack?.close();
    await fx?.close({ keepDataDir: true });
    disk?.close();
  }, 120_000);

  /** A create right after a fault: the first attempt's answer, and retries (≤ 10 s) until one works. */
  const createAfter = async (): Promise<string> => {
    const first = await stack.api.call<Sandbox>("POST", "/v1/sandboxes", {
      template: "base",
      memory_mb: 512,
    });
    if (first.status === 201) return "a create right after works";
    const started = Date.now();
    if (!(await until(async () => (await stack.create()).id !== "", 10_000, 250)))
      throw new Error(`no create works within 10 s (first answer ${statusText(first)})`);
    return `a create right after answered ${statusText(first)}, one ${((Date.now() - started) / 1000).toFixed(1)} s later works`;
  };

  it("PostgreSQL restarted during a create", async () => {
    await table.cell("PostgreSQL restart", "create", async () => {
      const request = stack.api.call("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
      const seen = await until(async () => (await stack.rowIds()).size > rowsBefore.size, 30_000, 5);
      await restartPostgres();
      const res = await request;
      expectRetryable("create", res);
      const later = await createAfter();
      const after = await check();
      return {
        trigger: seen ? "row pending in the database" : "no row seen; restarted after the call",
        outcome: `request ${statusText(res)}; rows ${settledText(fresh(after), after.settleMs)}; ${later}; deleted, no leftovers`,
      };
    });
  }, 180_000);

  it("PostgreSQL restarted during a burst of GETs", async () => {
    await table.cell("PostgreSQL restart", "burst of 20 GETs", async () => {
      const s = await stack.create();
      const statuses: string[] = [];
      const burst = (async () => {
        for (let i = 0; i < 20; i++) {
          const path = i % 2 === 0 ? "/v1/sandboxes" : `/v1/sandboxes/${s.id}`;
          const res = await stack.api
            .call("GET", path)
            .catch((err: Error) => ({ status: 0, body: err.message }));
          expectRetryable(`GET ${path}`, res);
          statuses.push(statusText(res));
          await sleep(100);
        }
      })();
      await until(async () => statuses.length >= 3, 10_000);
      const restartedAt = new Date();
      await restartPostgres();
      await burst;
      // The control plane carries on without a restart: LISTEN again, leases renewed after it.
      const listening = await until(
        async () =>
          (
            await stack.db.query<{ n: string }>(
              "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
            )
          )[0]?.n !== "0",
        10_000,
        200,
      );
      if (!listening) throw new Error("no LISTEN connection on the database 10 s after the restart");
      const renewed = await until(
        async () =>
          (
            await stack.db.query<{ n: string }>(
              "SELECT count(*) AS n FROM worker_leases WHERE expires_at > $1::timestamptz + interval '1 second'",
              [restartedAt.toISOString()],
            )
          )[0]?.n !== "0",
        10_000,
        200,
      );
      if (!renewed) throw new Error("no worker lease renewed within 10 s of the restart");
      const later = await createAfter();
      await check();
      const counts = new Map<string, number>();
      for (const st of statuses) counts.set(st, (counts.get(st) ?? 0) + 1);
      return {
        trigger: "3 GETs answered",
        outcome: `answers ${[...counts].map(([k, n]) => `${n}× ${k}`).join(", ")}; LISTEN back and leases renewed; ${later}; deleted, no leftovers`,
      };
    });
  }, 180_000);

  it("the agent's data dir full during a pause", async () => {
    await table.cell("data dir full", "pause", async () => {
      const s = await stack.create();
      const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
      disk.fill(1 << 20);
      let refused: { status: number; body: unknown };
      try {
        refused = await stack.api.call("POST", `/v1/sandboxes/${s.id}/pause`, {});
        const code = (refused.body as ErrorBody)?.error?.code;
        if (refused.status === 200) throw new Error("pause succeeded on a full data dir");
        if (code !== "resource_exhausted")
          throw new Error(`pause on a full disk: ${refused.status} ${JSON.stringify(refused.body)}`);
        // Still running, its file still there, while the disk is still full.
        const [row] = await waitSettled(stack.db, 30_000).then((rows) => rows.filter((r) => r.id === s.id));
        if (row?.state !== "running") throw new Error(`row ${row?.state} after the refused pause`);
        await stack.verifyFiles(s.id, files.get(s.id) ?? []);
      } finally {
        disk.unfill();
      }
      await stack.step(s.id, "pause");
      await stack.step(s.id, "resume");
      await stack.verifyFiles(s.id, files.get(s.id) ?? []);
      const after = await check(files);
      return {
        trigger: "data dir filled to 1 MiB free just before the pause",
        outcome: `pause ${statusText(refused)}; row running, file reads back; after freeing space pause + resume work; ${settledText(fresh(after), after.settleMs)}, deleted, no leftovers`,
      };
    });
  }, 180_000);

  it("the agent's data dir full during a snapshot", async () => {
    await table.cell("data dir full", "snapshot", async () => {
      const s = await stack.create();
      const files = new Map([[s.id, [await stack.writeFile(s.id, "before.bin")]]]);
      const snapshot = (name: string) => stack.api.call("POST", "/v1/snapshots", { sandbox_id: s.id, name });
      disk.fill(1 << 20);
      let refused: { status: number; body: unknown };
      try {
        refused = await snapshot("flt-full");
        if (refused.status < 300) throw new Error("snapshot succeeded on a full data dir");
        if ((refused.body as ErrorBody)?.error?.code !== "resource_exhausted")
          throw new Error(`snapshot on a full disk: ${refused.status} ${JSON.stringify(refused.body)}`);
        await stack.verifyFiles(s.id, files.get(s.id) ?? []);
      } finally {
        disk.unfill();
      }
      const kept = await stack.db.query("SELECT 1 FROM templates WHERE kind = 'snapshot'");
      if (kept.length > 0) throw new Error("a refused snapshot left a template row");
      const made = await snapshot("flt-after");
      if (made.status >= 300)
        throw new Error(`snapshot after freeing space: ${made.status} ${JSON.stringify(made.body)}`);
      const after = await check(files);
      const deleted = await stack.api.call("DELETE", "/v1/snapshots/flt-after");
      if (deleted.status !== 204) throw new Error(`DELETE snapshot: ${deleted.status}`);
      if ((await fx.client.listSnapshots({})).snapshots.length > 0)
        throw new Error("the agent still holds a snapshot");
      return {
        trigger: "data dir filled to 1 MiB free just before the snapshot",
        outcome: `snapshot ${statusText(refused)}, no template row; sandbox ${settledText(fresh(after), after.settleMs)}, file reads back; after freeing space a snapshot works; deleted, no leftovers`,
      };
    });
  }, 180_000);

  it("the control plane's link to the agent dropped and restored", async () => {
    await table.cell("link dropped", "running + paused sandboxes, create during the drop", async () => {
      const running = await stack.create();
      const paused = await stack.create();
      const files = new Map([
        [running.id, [await stack.writeFile(running.id, "before.bin")]],
        [paused.id, [await stack.writeFile(paused.id, "before.bin")]],
      ]);
      await stack.step(paused.id, "pause");
      link.drop();
      const droppedAt = Date.now();
      let during: string;
      let shown: string;
      try {
        if (!(await until(async () => (await hostState()) === "unreachable", HOST_DEADLINE_MS + 15_000, 100)))
          throw new Error(`host still ${await hostState()} ${HOST_DEADLINE_MS + 15_000} ms into the drop`);
        const unreachableS = (Date.now() - droppedAt) / 1000;
        const states = async () => {
          const rows = await stack.db.query<{ id: string; state: string }>(
            "SELECT id, state FROM sandboxes WHERE id = ANY($1)",
            [[running.id, paused.id]],
          );
          return rows
            .map((r) => `${r.id === running.id ? "running one" : "paused one"} ${r.state}`)
            .join(", ");
        };
        await sleep(1500); // a reconcile pass or two over the unreachable host
        shown = `host unreachable ${unreachableS.toFixed(1)} s into the drop; ${await states()}`;
        const created = await stack.api.call("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
        if (created.status === 201)
          throw new Error("a create during the drop was placed on the unreachable host");
        during = `create during the drop ${statusText(created)}`;
      } finally {
        link.restore();
      }
      const restoredAt = Date.now();
      if (!(await until(async () => (await hostState()) === "up", 30_000, 100)))
        throw new Error(`host ${await hostState()} 30 s after the restore`);
      const upS = (Date.now() - restoredAt) / 1000;
      const back = await until(async () => {
        const rows = await stack.db.query<{ id: string; state: string }>(
          "SELECT id, state FROM sandboxes WHERE id = ANY($1)",
          [[running.id, paused.id]],
        );
        return rows.every((r) => r.state === (r.id === running.id ? "running" : "paused"));
      }, 30_000);
      if (!back) throw new Error("the sandboxes did not get back to running and paused after the restore");
      const backS = (Date.now() - restoredAt) / 1000;
      await check(files);
      return {
        trigger: "iptables DROP of the agent's RPC and traffic ports on loopback",
        outcome: `${shown}; ${during}; after restore host up in ${upS.toFixed(1)} s, sandboxes back to running and paused in ${backS.toFixed(1)} s, files intact; deleted, no leftovers`,
      };
    });
  }, 180_000);
});
