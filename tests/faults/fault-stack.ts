import type { AgentClient } from "../e2e/agent-fixture.js";
import { CpProcess, createFaultDatabase, type FaultDatabase } from "./cp-process.js";
import {
  type AfterFault,
  checkAfterFault,
  type FaultApi,
  faultApi,
  type SandboxRowState,
} from "./invariants.js";

/** The network and cgroup name prefix of every fault-suite agent (tests/sweep-test-leftovers.ts knows it). */
export const FAULT_PREFIX = "wflt";

export type Sandbox = { id: string; state: string; host_id: string };
export type Exec = { exit_code: number; stdout: string; stderr: string };

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it is true; false after `timeoutMs`. A throw counts as false. */
export async function until(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  everyMs = 10,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return true;
    await sleep(everyMs);
  }
  return false;
}

/** An agent to register with the control plane: where it listens and the token it wants. */
export interface AgentEndpoint {
  port: number;
  token: string;
}

/**
 * A fault cell's stack: a throwaway PostgreSQL database, one `wrenn-cp serve` child on it
 * (tests/faults/cp-process.ts) with the admin team's key, and host agents registered with it,
 * plus the REST calls every cell makes (create, exec, files with checksums).
 */
export class FaultStack {
  private constructor(
    readonly db: FaultDatabase,
    readonly cp: CpProcess,
    readonly api: FaultApi,
  ) {}

  /** Starts the database and control plane (`cpEnv` adds to FAULT_CP_ENV) and registers `agents`. */
  static async start(agents: AgentEndpoint[], cpEnv: Record<string, string> = {}): Promise<FaultStack> {
    const db = await createFaultDatabase();
    const cp = await CpProcess.create(db.url, cpEnv);
    const key = cp.bootstrap();
    await cp.start();
    const stack = new FaultStack(
      db,
      cp,
      faultApi(() => cp.url, key),
    );
    for (const [i, agent] of agents.entries()) await stack.registerHost(`flt-${i + 1}`, agent);
    return stack;
  }

  async registerHost(name: string, agent: AgentEndpoint): Promise<string> {
    const host = await this.api.call<{ host: { id: string }; registration_token: string }>(
      "POST",
      "/v1/hosts",
      { name, shared: true },
    );
    if (host.status !== 201) throw new Error(`POST /v1/hosts: ${host.status} ${JSON.stringify(host.body)}`);
    const reg = await this.api.call("POST", "/v1/hosts/register", {
      token: host.body.registration_token,
      url: `http://127.0.0.1:${agent.port}`,
      agent_token: agent.token,
    });
    if (reg.status !== 200) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
    return host.body.host.id;
  }

  async close(): Promise<void> {
    await this.cp.close();
    await this.db.drop();
  }

  async create(): Promise<Sandbox> {
    const res = await this.api.call<Sandbox>("POST", "/v1/sandboxes", { template: "base", memory_mb: 512 });
    if (res.status !== 201) throw new Error(`create: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  async exec(id: string, command: string): Promise<Exec> {
    const res = await this.api.call<Exec>("POST", `/v1/sandboxes/${id}/exec`, { command });
    if (res.status !== 200) throw new Error(`exec in ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** POST /v1/sandboxes/{id}/{step} that must answer 200. */
  async step(id: string, step: "pause" | "resume"): Promise<void> {
    const res = await this.api.call("POST", `/v1/sandboxes/${id}/${step}`, {});
    if (res.status !== 200) throw new Error(`${step} ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  }

  /** Writes 1 MiB of random bytes to `name` in the guest and returns its sha256sum line. */
  async writeFile(id: string, name: string): Promise<string> {
    const res = await this.exec(
      id,
      `head -c 1048576 /dev/urandom > /home/user/${name} && sync && sha256sum /home/user/${name}`,
    );
    if (res.exit_code !== 0) throw new Error(`write ${name}: ${res.stderr}`);
    return res.stdout.trim();
  }

  /** Checks every sha256sum line in the guest; throws naming the first file that differs. */
  async verifyFiles(id: string, lines: string[]): Promise<void> {
    const res = await this.exec(
      id,
      `printf '%s\\n' ${lines.map((l) => `'${l}'`).join(" ")} | sha256sum -c --quiet`,
    );
    if (res.exit_code !== 0) throw new Error(`files changed in ${id}: ${res.stdout}${res.stderr}`);
  }

  /** checkAfterFault's `verify`: a running sandbox's files are there; a paused one is resumed first. */
  dataCheck(files: Map<string, string[]>): (row: SandboxRowState) => Promise<void> {
    return async (row) => {
      if (row.state === "paused") await this.step(row.id, "resume");
      const lines = files.get(row.id);
      if (lines) await this.verifyFiles(row.id, lines);
      else if ((await this.exec(row.id, "echo ok")).stdout !== "ok\n")
        throw new Error(`${row.id} does not run commands`);
    };
  }

  /** The invariants after a cell (invariants.ts), `files` checked in each running or paused sandbox. */
  check(
    agent: { client: AgentClient; dataDir: string },
    files = new Map<string, string[]>(),
  ): Promise<AfterFault> {
    return checkAfterFault({
      db: this.db,
      api: this.api,
      agent,
      prefix: FAULT_PREFIX,
      verify: this.dataCheck(files),
    });
  }

  /** Ids of the sandbox rows in the database. */
  async rowIds(): Promise<Set<string>> {
    return new Set((await this.db.query<{ id: string }>("SELECT id FROM sandboxes")).map((r) => r.id));
  }
}

/** A request's outcome for the table: its status, or "lost" when the call threw. */
export function answerOf(request: Promise<{ status: number }>): Promise<string> {
  return request.then(
    (r) => String(r.status),
    () => "lost",
  );
}

/** "running after restart (settled in 1.2 s)"-style text for a cell's outcome. */
export function settledText(states: SandboxRowState[], settleMs: number): string {
  return `${states.map((s) => s.state).join(",") || "no row"} (settled in ${(settleMs / 1000).toFixed(1)} s)`;
}
