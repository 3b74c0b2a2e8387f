import { randomBytes } from "node:crypto";
import { createWriteStream, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AgentClient, type AgentProcess, agentClient, spawnAgentProcess } from "../e2e/agent-fixture.js";
import { qemuProcessesMatching } from "../e2e/host-leftovers.js";
import { freePort } from "./cp-process.js";
import { FAULT_PREFIX } from "./fault-stack.js";

/**
 * A host agent run as its own process on one data dir and fixed ports across restarts, so a
 * test can SIGKILL it mid-step like a crash and start it again where it was (its recovery
 * re-adopts or cleans up what the crash left). The control plane keeps its URL.
 */
export class FaultAgentProcess {
  private proc: AgentProcess | undefined;
  readonly client: AgentClient;

  private constructor(
    readonly dataDir: string,
    readonly token: string,
    readonly port: number,
    private readonly env: NodeJS.ProcessEnv,
  ) {
    this.client = agentClient(port, token);
  }

  /** A started agent with the fault suite's prefix, 4 slots from `firstSlot`, and `hostId`. */
  static async launch(options: { firstSlot: number; hostId: string }): Promise<FaultAgentProcess> {
    const dataDir = mkdtempSync(join(tmpdir(), "wrenn-agent-fault-"));
    const port = await freePort();
    const agent = new FaultAgentProcess(dataDir, randomBytes(24).toString("hex"), port, {
      WRENN_AGENT_PORT: String(port),
      WRENN_AGENT_TRAFFIC_PORT: String(await freePort()),
      WRENN_NET_PREFIX: FAULT_PREFIX,
      WRENN_FIRST_SLOT: String(options.firstSlot),
      WRENN_MAX_SLOTS: "4",
      WRENN_HOST_ID: options.hostId,
      // A clean stop (close) takes its VMs along; a SIGKILL leaves them for the next start.
      WRENN_AGENT_DESTROY_ON_EXIT: "1",
    });
    await agent.start();
    return agent;
  }

  async start(): Promise<void> {
    if (this.proc) throw new Error("agent already running");
    this.proc = await spawnAgentProcess(this.dataDir, this.token, this.env);
    // Its log beside the data dir (kept with WRENN_FAULTS_KEEP_LOGS).
    const log = createWriteStream(this.logPath, { flags: "a" });
    this.proc.child.stdout?.pipe(log);
    this.proc.child.stderr?.pipe(log);
  }

  /** SIGKILLs the agent, like a crash; its VMs run on. */
  async kill(): Promise<void> {
    await this.proc?.crash();
    this.proc = undefined;
  }

  /** Sandbox ids that have a directory (a record) under the data dir. */
  sandboxDirs(): string[] {
    try {
      return readdirSync(join(this.dataDir, "sandboxes"));
    } catch {
      return [];
    }
  }

  /** Files of memory snapshot generations under the data dir. */
  memoryFiles(): string[] {
    try {
      return readdirSync(join(this.dataDir, "memory"));
    } catch {
      return [];
    }
  }

  /** QEMU processes of one sandbox (their command lines name its directory). */
  qemuOf(sandboxId: string): number[] {
    return qemuProcessesMatching(join(this.dataDir, "sandboxes", sandboxId)).map((p) => p.pid);
  }

  /** Stops the agent (SIGTERM: it destroys its sandboxes; SIGKILL after 20 s) and removes its data dir. */
  async close(): Promise<void> {
    const proc = this.proc;
    if (proc) {
      const exited = new Promise<void>((r) => proc.child.once("exit", () => r()));
      proc.child.kill("SIGTERM");
      const timer = setTimeout(() => proc.child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
      this.proc = undefined;
    }
    rmSync(this.dataDir, { recursive: true, force: true });
    if (!process.env.WRENN_FAULTS_KEEP_LOGS) rmSync(this.logPath, { force: true });
  }

  get logPath(): string {
    return `${this.dataDir}.log`;
  }
}
