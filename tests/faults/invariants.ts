import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { AgentClient } from "../e2e/agent-fixture.js";
import { type ApiCaller, apiCaller } from "../e2e/api-caller.js";
import { findHostLeftovers, type HostLeftovers } from "../e2e/host-leftovers.js";
import type { FaultDatabase } from "./cp-process.js";

/** States a sandbox may be left in after a fault; anything else is transitional. */
const SETTLED = new Set(["running", "paused", "stopped", "error"]);

export interface SandboxRowState {
  id: string;
  state: string;
  error: string | null;
}

/** The REST API of a control plane under test, with the admin team's key. */
export interface FaultApi {
  call: ApiCaller;
}

export function faultApi(url: () => string, key: string): FaultApi {
  return { call: apiCaller(url, () => key) };
}

/** Cgroups an agent with this prefix still has (v2, or v1's memory and cpu controllers). */
export function cgroupLeftovers(prefix: string, root = "/sys/fs/cgroup"): string[] {
  const parents = existsSync(join(root, "cgroup.controllers"))
    ? [join(root, prefix)]
    : [join(root, "memory", prefix), join(root, "cpu", prefix)];
  const out: string[] = [];
  for (const parent of parents) {
    if (!existsSync(parent)) continue;
    for (const name of readdirSync(parent)) {
      if (statSync(join(parent, name)).isDirectory()) out.push(join(parent, name));
    }
  }
  return out;
}

/**
 * Waits until no sandbox row is in a transitional state (`pending`, `missing`), at most
 * `deadlineMs`; returns every row, or throws naming the ones still stuck.
 */
export async function waitSettled(db: FaultDatabase, deadlineMs: number): Promise<SandboxRowState[]> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const rows = await db.query<SandboxRowState>(
      "SELECT id, state, error FROM sandboxes ORDER BY created_at",
    );
    const stuck = rows.filter((r) => !SETTLED.has(r.state));
    if (stuck.length === 0) return rows;
    if (Date.now() > until) {
      throw new Error(`stuck past ${deadlineMs} ms: ${stuck.map((r) => `${r.id}=${r.state}`).join(", ")}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

export interface AfterFault {
  /** Row states once settled (before the deletes). */
  states: SandboxRowState[];
  /** Milliseconds from the call until no row was transitional. */
  settleMs: number;
}

/**
 * The checks after every fault cell:
 * - within `deadlineMs` no sandbox is transitional, and each is running, paused, stopped or error;
 * - `verify` (the cell's data check) passes for each running or paused one;
 * - every sandbox not stopped is deletable (DELETE → 204);
 * - within `deadlineMs` the agent then runs no sandbox, and it leaves no QEMU, namespace, link, iptables rule,
 *   sandbox file, slot lease or cgroup under its prefix.
 */
export async function checkAfterFault(options: {
  db: FaultDatabase;
  api: FaultApi;
  /** The host agent (in this process or its own): its RPC client and data dir. */
  agent: { client: AgentClient; dataDir: string };
  prefix: string;
  deadlineMs?: number;
  verify?: (row: SandboxRowState) => Promise<void>;
}): Promise<AfterFault> {
  const started = Date.now();
  const states = await waitSettled(options.db, options.deadlineMs ?? 30_000);
  const settleMs = Date.now() - started;
  const deleteAll = async () => {
    for (const row of states) {
      if (row.state === "stopped") continue;
      const res = await options.api.call("DELETE", `/v1/sandboxes/${row.id}`);
      if (res.status !== 204)
        throw new Error(`DELETE ${row.id} (${row.state}): ${res.status} ${JSON.stringify(res.body)}`);
    }
  };
  try {
    for (const row of states) {
      if (row.state === "running" || row.state === "paused") await options.verify?.(row);
    }
  } catch (err) {
    // The cell fails on its data check; its sandboxes still go, so the next cell starts clean.
    await deleteAll().catch(() => {});
    throw err;
  }
  await deleteAll();
  // A VM with no row (a fork whose rows were never written) goes once the reconciler's grace is over.
  const listDeadline = Date.now() + (options.deadlineMs ?? 30_000);
  for (;;) {
    const listed = (await options.agent.client.listSandboxes({})).sandboxes.map((s) => s.sandboxId);
    if (listed.length === 0) break;
    if (Date.now() > listDeadline) throw new Error(`the agent still has sandboxes: ${listed.join(", ")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const left: HostLeftovers & { cgroups: string[] } = {
    ...findHostLeftovers(options.agent.dataDir, options.prefix),
    cgroups: cgroupLeftovers(options.prefix),
  };
  const leaked = Object.entries(left).filter(([, v]) => v.length > 0);
  if (leaked.length > 0) throw new Error(`leftovers: ${JSON.stringify(Object.fromEntries(leaked))}`);
  return { states, settleMs };
}
