import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { GuestClient, trafficHopHeaders } from "@wrenn/guest-client";
import { createHostAgent, type HostAgent, parseAgentConfig } from "@wrenn/host-agent";
import { HostAgentService } from "@wrenn/proto";
import { createLogger, createSilentLogger } from "@wrenn/shared";

export type AgentClient = Client<typeof HostAgentService>;

/** Something that reaches a sandbox's guest: an agent fixture, or an agent run as its own process. */
export interface GuestRoute {
  guest(sandboxId: string): Promise<GuestClient>;
}

export interface AgentFixture extends GuestRoute {
  agent: HostAgent;
  client: AgentClient;
  dataDir: string;
  token: string;
  /** A client that presents a different token. */
  clientWithToken(token: string): AgentClient;
  /** Stops the agent; by default destroys every sandbox first. Removes the data dir unless kept. */
  close(options?: { destroySandboxes?: boolean; keepDataDir?: boolean }): Promise<void>;
}

/**
 * Network names and slots of test agents that don't pick their own: never the production
 * defaults ("wrenn", slot 1), so the suite can run beside a live agent without touching it.
 */
export const TEST_NET_PREFIX = "wt";
export const TEST_FIRST_SLOT = 2000;

export const IMAGES_DIR = join(process.env.WRENN_DIR || join(homedir(), ".wrenn"), "images");

/** A HostAgentService client for an agent on this machine, presenting its host token. */
export function agentClient(port: number, token: string): AgentClient {
  const transport = createConnectTransport({
    baseUrl: `http://127.0.0.1:${port}`,
    httpVersion: "2",
    interceptors: [
      (next) => async (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      },
    ],
  });
  return createClient(HostAgentService, transport);
}

/**
 * A sandbox's envd through the agent's traffic listener (the port its Ping reports), with
 * envd's own protocol: the way the control plane reaches a guest.
 */
export async function guestThroughAgent(
  client: AgentClient,
  hostToken: string,
  sandboxId: string,
  accessToken: string,
): Promise<GuestClient> {
  const { trafficPort } = await client.ping({});
  return guestThroughTraffic(trafficPort, hostToken, sandboxId, accessToken);
}

/** As guestThroughAgent, for a caller that already knows the traffic port. */
export function guestThroughTraffic(
  trafficPort: number,
  hostToken: string,
  sandboxId: string,
  accessToken: string,
): GuestClient {
  return new GuestClient({
    baseUrl: `http://127.0.0.1:${trafficPort}`,
    headers: trafficHopHeaders({ hostToken, sandboxId, accessToken }),
    requestTimeoutMs: 30_000,
  });
}

/**
 * Starts a real host agent (real QEMU, namespaces, disks) in this process, on a free port, with
 * the test network prefix and slots unless `overrides` names others. `existing` gives the data
 * dir and host token to use (an agent after another over the same dir); by default a new temp
 * dir and token. Tests and bench suites alike start their agents here.
 */
export async function startAgent(
  overrides: Record<string, unknown> = {},
  existing: { dataDir?: string; token?: string } = {},
  options: { waitForImageSnapshot?: boolean } = {},
): Promise<AgentFixture> {
  const dataDir = existing.dataDir ?? mkdtempSync(join(tmpdir(), "wrenn-agent-test-"));
  const token = existing.token ?? randomBytes(24).toString("hex");
  const config = parseAgentConfig({
    dataDir,
    imagesDir: IMAGES_DIR,
    port: 0,
    hostToken: token,
    hostId: "test-host",
    netNamePrefix: TEST_NET_PREFIX,
    firstSlot: TEST_FIRST_SLOT,
    ...overrides,
  });
  const logger = process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger();
  const agent = await createHostAgent(config, logger);
  // The default image's snapshot builds in the background from start; tests that look at the
  // host's state want it done (a failed build shows in the first create instead).
  if (options.waitForImageSnapshot !== false) await agent.defaultImageSnapshot.ready.catch(() => {});
  const client = agentClient(agent.port, token);
  return {
    agent,
    client,
    dataDir,
    token,
    clientWithToken: (other) => agentClient(agent.port, other),
    // The agent's record holds the sandbox's envd token; an unknown sandbox goes without one.
    guest: (sandboxId) =>
      guestThroughAgent(
        client,
        token,
        sandboxId,
        agent.manager.list().find((r) => r.id === sandboxId)?.envdAccessToken ?? "",
      ),
    async close(options = {}) {
      await agent.close({ destroySandboxes: options.destroySandboxes ?? true });
      if (!options.keepDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs a shell command in a sandbox through the agent's traffic listener and decodes the output. */
export async function exec(
  route: GuestRoute,
  sandboxId: string,
  command: string,
  options: { user?: string; timeoutMs?: number; envs?: Record<string, string> } = {},
): Promise<{ exitCode: number; stdout: string; stderr: string; error: string }> {
  const guest = await route.guest(sandboxId);
  const res = await guest.exec(
    { command, user: options.user, envs: options.envs },
    options.timeoutMs ? { timeoutMs: options.timeoutMs } : {},
  );
  return {
    exitCode: res.exitCode,
    stdout: Buffer.from(res.stdout).toString("utf8"),
    stderr: Buffer.from(res.stderr).toString("utf8"),
    error: res.error ?? "",
  };
}

/** A host agent run as its own process (spawnAgentProcess). */
export interface AgentProcess extends GuestRoute {
  child: ChildProcess;
  port: number;
  client: AgentClient;
  /**
   * The envd token to create sandboxes with: the agent's records are out of reach in another
   * process, so guest() presents this one.
   */
  envdAccessToken: string;
  /** SIGKILLs the agent, like a crash, and resolves once it is gone. */
  crash(): Promise<void>;
}

/**
 * Runs wrenn-agent as its own process, with the test network prefix, slots and images dir
 * unless `env` says otherwise, so the test can SIGKILL it like a crash.
 */
export async function spawnAgentProcess(
  dataDir: string,
  token: string,
  env: NodeJS.ProcessEnv = {},
): Promise<AgentProcess> {
  const repo = resolve(import.meta.dirname, "../..");
  // node --import tsx (not the tsx wrapper) so SIGKILL hits the agent itself, like a real crash.
  const child = spawn(process.execPath, ["--import", "tsx", join(repo, "packages/host-agent/src/main.ts")], {
    cwd: repo,
    env: {
      ...process.env,
      WRENN_AGENT_DATA_DIR: dataDir,
      WRENN_IMAGES_DIR: IMAGES_DIR,
      WRENN_AGENT_PORT: "0",
      WRENN_AGENT_TOKEN: token,
      WRENN_NET_PREFIX: TEST_NET_PREFIX,
      WRENN_FIRST_SLOT: String(TEST_FIRST_SLOT),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<void>((resolveExit) => child.once("exit", () => resolveExit()));
  const port = await new Promise<number>((resolvePort, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /wrenn-agent listening on (\d+)/.exec(out);
      if (m) resolvePort(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`agent exited early (${code}): ${out}`)));
  });
  const client = agentClient(port, token);
  const envdAccessToken = randomBytes(24).toString("hex");
  return {
    child,
    port,
    client,
    envdAccessToken,
    guest: (sandboxId) => guestThroughAgent(client, token, sandboxId, envdAccessToken),
    async crash() {
      child.kill("SIGKILL");
      await exited;
    },
  };
}
