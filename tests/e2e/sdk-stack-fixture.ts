import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ApiClient, Sandbox, type SandboxInfo, Snapshot } from "@wrenn/sdk";
import { afterAll, beforeAll, expect } from "vitest";
import { findHostLeftovers } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

export const SDK_STACK_PREFIX = "wsdk";
/** Generous: a TCG boot is ~12 s on an idle host and several times that on a busy one. */
export const VM_STEP_MS = 300_000;

/** What `useSdkStack` sets up (ready inside the file's tests). */
export interface SdkStack {
  stack: Stack;
  client: ApiClient;
  /** The environment the `wrenn` CLI and the README's examples run with. */
  env: Record<string, string>;
  /** The CLI's WRENN_DIR, removed afterwards. */
  work: string;
}

/**
 * Registers the file's beforeAll/afterAll: a real control plane (PGlite) with one real host
 * agent, an SDK client and the CLI's environment; afterwards whatever a failed step left is
 * removed (sandboxes, then snapshots) and nothing of the agent is left on the host.
 */
export function useSdkStack(): SdkStack {
  const ctx = { work: mkdtempSync(join(tmpdir(), "wrenn-sdk-stack-")) } as SdkStack;
  beforeAll(async () => {
    ctx.stack = await startStack({
      agents: [{ netNamePrefix: SDK_STACK_PREFIX, firstSlot: 1200, maxSlots: 6 }],
    });
    ctx.client = new ApiClient({ apiUrl: ctx.stack.url, apiKey: ctx.stack.apiKey, timeoutMs: 180_000 });
    ctx.env = { WRENN_API_URL: ctx.stack.url, WRENN_API_KEY: ctx.stack.apiKey, WRENN_DIR: ctx.work };
  }, VM_STEP_MS);

  afterAll(async () => {
    const { stack, client } = ctx;
    if (stack) {
      const live = await Sandbox.list({ client, state: ["pending", "running", "paused", "error"] }).catch(
        () => [] as SandboxInfo[],
      );
      for (const s of live) await Sandbox.kill(s.sandboxId, { client }).catch(() => undefined);
      for (const s of await Snapshot.list({ client }).catch(() => [])) {
        await Snapshot.delete(s.name, { client, force: true }).catch(() => undefined);
      }
      const dataDir = stack.agents[0]?.dataDir ?? "";
      await stack.close();
      const left = findHostLeftovers(dataDir, SDK_STACK_PREFIX);
      expect(left.qemuProcesses).toEqual([]);
      expect(left.namespaces).toEqual([]);
      expect(left.links).toEqual([]);
      expect(left.iptablesRules).toEqual([]);
    }
    rmSync(ctx.work, { recursive: true, force: true });
  }, VM_STEP_MS);
  return ctx;
}
