import { afterAll, beforeAll, describe, it } from "vitest";
import { FaultAgentProcess } from "./agent-process.js";
import { FaultStack, until } from "./fault-stack.js";
import { FaultTable } from "./fault-table.js";

/** How long an interrupted build may take to end (error, or ready when re-run). */
const BUILD_END_DEADLINE_MS = 60_000;
type Build = { id: string; status: string; error: { message: string } | null };

/**
 * kill -9 of the control plane and of the host agent while a template build runs its one `run`
 * step (from the `base` image): the build ends (error, or ready if re-run) within a deadline,
 * nothing of it is left on the host, and a new build works.
 */
describe("fault suite: control plane and agent killed mid template build", () => {
  const table = new FaultTable();
  let agent: FaultAgentProcess;
  let stack: FaultStack;

  beforeAll(async () => {
    agent = await FaultAgentProcess.launch({ firstSlot: 6420, hostId: "flt-build" });
    stack = await FaultStack.start([agent]);
  }, 180_000);

  afterAll(async () => {
    table.print("kill -9 mid template build (one `run` step from base, real agent and VMs)");
    await stack?.close();
    await agent?.close();
  }, 120_000);

  /** Starts a build of `name` whose only step prints a marker, then runs a few seconds. */
  const startBuild = async (name: string, marker: string): Promise<string> => {
    const res = await stack.api.call<{ build: { id: string } }>("POST", "/v1/templates", {
      name,
      steps: [{ type: "run", command: `echo ${marker}; sleep 3; echo built > /home/user/built.txt` }],
    });
    if (res.status !== 202) throw new Error(`POST /v1/templates: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.build.id;
  };
  const buildOf = async (id: string): Promise<Build> =>
    (await stack.api.call<Build>("GET", `/v1/builds/${id}`)).body;
  /** Waits until the build is ready or error; returns it and the seconds it took. */
  const waitEnded = async (id: string, timeoutMs: number): Promise<{ build: Build; seconds: number }> => {
    const started = Date.now();
    let build: Build | undefined;
    const ended = await until(
      async () => {
        build = await buildOf(id);
        return build.status === "ready" || build.status === "error";
      },
      timeoutMs,
      250,
    );
    if (!ended || !build) throw new Error(`build ${id} still ${build?.status} after ${timeoutMs} ms`);
    return { build, seconds: (Date.now() - started) / 1000 };
  };
  const logged = async (buildId: string, marker: string) =>
    (
      await stack.db.query("SELECT 1 FROM template_build_logs WHERE build_id = $1 AND message LIKE $2", [
        buildId,
        `%${marker}%`,
      ])
    ).length > 0;
  /** Deletes every template (their snapshots go from the agent) and checks the agent holds none. */
  const deleteTemplates = async () => {
    const rows = await stack.db.query<{ name: string }>("SELECT name FROM templates WHERE kind = 'built'");
    for (const r of rows) {
      const res = await stack.api.call("DELETE", `/v1/templates/${r.name}`);
      if (res.status !== 204)
        throw new Error(`DELETE template ${r.name}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    const held = await until(
      async () => (await agent.client.listSnapshots({})).snapshots.length === 0,
      30_000,
      200,
    );
    if (!held) throw new Error("the agent still holds template snapshots");
  };

  /** One cell: a build, `kill` once its step runs, then the invariants and a new build. */
  const killMidBuild = async (name: string, kill: () => Promise<void>) => {
    const marker = `flt-step-of-${name}`;
    const id = await startBuild(name, marker);
    const seen = await until(() => logged(id, marker), 60_000, 50);
    await kill();
    const { build, seconds } = await waitEnded(id, BUILD_END_DEADLINE_MS);
    await stack.check(agent);
    const next = await waitEnded(await startBuild(`${name}-next`, `flt-next-${name}`), 120_000);
    if (next.build.status !== "ready") throw new Error(`the next build: ${JSON.stringify(next.build)}`);
    await deleteTemplates();
    await stack.check(agent);
    return {
      trigger: seen
        ? "the step's first output line in the build log"
        : "step output never seen; killed after 60 s",
      outcome: `build ${build.status} ${seconds.toFixed(1)} s after the kill${build.error ? ` (${build.error.message.slice(0, 100)})` : ""}; no VM or file left; a new build ready in ${next.seconds.toFixed(1)} s`,
    };
  };

  it("kill -9 of the control plane mid-build", async () => {
    await table.cell("kill -9 control plane", "template build", () =>
      killMidBuild("flt-cp-kill", async () => {
        await stack.cp.kill();
        await stack.cp.start();
      }),
    );
  }, 300_000);

  it("kill -9 of the agent mid-build", async () => {
    await table.cell("kill -9 agent", "template build", () =>
      killMidBuild("flt-agent-kill", async () => {
        await agent.kill();
        await agent.start();
      }),
    );
  }, 300_000);
});
