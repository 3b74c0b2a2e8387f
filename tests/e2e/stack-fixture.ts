import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bootstrapAdminTeam, type ControlPlane, createControlPlane } from "@wrenn/control-plane";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { type AgentFixture, startAgent } from "./agent-fixture.js";

export interface StackAgentOptions {
  /** Unique per agent on this machine (namespaces, links, iptables chains). */
  netNamePrefix: string;
  firstSlot: number;
  maxSlots: number;
  /** Volumes on (the agent's nfs-ganesha, on these host ports). */
  volumes?: boolean;
  nfsPort?: number;
  nfsMountPort?: number;
  /** Image snapshots (default on, as in the agent's config). */
  imageSnapshots?: boolean;
  /** The agent's floor under the host's available memory for starts. */
  minAvailableMemoryMiB?: number;
  /** TCG translation cache per VM (benchmarks compare sizes). */
  tcgTbSizeMiB?: number;
  /** Egress out of this interface (a test "world" namespace's veth) instead of the default route's. */
  uplinkInterface?: string;
  /** The sandboxes' DNS forwarder asks these (`host:port`), e.g. a test responder. */
  dnsUpstreams?: string[];
}

export interface Stack {
  cp: ControlPlane;
  /** Base URL of the REST API. */
  url: string;
  /** The admin team's first API key. */
  apiKey: string;
  agents: AgentFixture[];
  /** Stops the control plane, then each agent (destroying its sandboxes, removing its data dir). */
  close(): Promise<void>;
}

/**
 * A real control plane (in-memory PGlite, port 0) with a bootstrapped admin team and,
 * optionally, real host agents registered to it the way an operator registers them.
 */
export async function startStack(
  options: { agents?: StackAgentOptions[]; metricsSampleMs?: number } = {},
): Promise<Stack> {
  const agents: AgentFixture[] = [];
  let cp: ControlPlane | undefined;
  const templateFilesDir = mkdtempSync(join(tmpdir(), "wrenn-stack-files-"));
  const close = async () => {
    await cp?.stop();
    for (const a of agents) await a.close();
    rmSync(templateFilesDir, { recursive: true, force: true });
  };
  try {
    for (const [i, a] of (options.agents ?? []).entries()) {
      agents.push(await startAgent({ ...a, hostId: `stack-host-${i}` }));
    }
    cp = await createControlPlane({
      config: {
        port: 0,
        pgliteDir: "memory",
        heartbeatIntervalMs: 300,
        reconcileIntervalMs: 500,
        hostDeadlineMs: 4000,
        pingTimeoutMs: 2000,
        templateFilesDir,
        // The metrics sampler every second unless a test wants it faster (it adds agent RPCs).
        metricsSampleMs: options.metricsSampleMs ?? 1000,
      },
      logger: process.env.WRENN_TEST_LOG ? createLogger({ level: "debug" }) : createSilentLogger(),
      validateResponses: true,
    });
    await cp.start();
    const apiKey = (await bootstrapAdminTeam(cp.context)).apiKey.value;
    const url = cp.url;
    const post = async <T>(path: string, body: unknown, key?: string): Promise<T> => {
      const res = await fetch(`${url}${path}`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    for (const [i, fx] of agents.entries()) {
      const created = await post<{ registration_token: string }>(
        "/v1/hosts",
        { name: `stack-host-${i}`, shared: true },
        apiKey,
      );
      await post("/v1/hosts/register", {
        token: created.registration_token,
        url: `http://127.0.0.1:${fx.agent.port}`,
        agent_token: fx.token,
      });
    }
    return { cp, url, apiKey, agents, close };
  } catch (err) {
    await close();
    throw err;
  }
}
