import { Code, ConnectError } from "@connectrpc/connect";
import { ApiClient, Sandbox, WrennApiError } from "@wrenn/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

const PREFIX = "wadm";

/**
 * Admission: a host whose available memory is below the agent's floor refuses every start
 * with no_capacity, straight to the agent and through the control plane (503), and leaves
 * nothing behind. The floor is set past any real host's memory so no VM is ever started.
 */
describe("admission beyond the host's capacity", () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({
      agents: [
        {
          netNamePrefix: PREFIX,
          firstSlot: 3900,
          maxSlots: 4,
          imageSnapshots: false,
          minAvailableMemoryMiB: 1024 * 1024 * 1024,
        },
      ],
    });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("refuses a create at the agent with no_capacity, starting nothing", async () => {
    const fx = stack.agents[0];
    if (!fx) throw new Error("no agent");
    const err = await fx.client.createSandbox({ image: "base" }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.rawMessage).toMatch(/host memory is low/);
    expect(fx.agent.manager.list()).toEqual([]);
    expect(findHostLeftovers(fx.dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  });

  it("answers 503 no_capacity through the control plane, and nothing is left running", async () => {
    const client = new ApiClient({ apiUrl: stack.url, apiKey: stack.apiKey, timeoutMs: 30_000 });
    const err = await Sandbox.create({ client }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WrennApiError);
    expect(err).toMatchObject({ code: "no_capacity", status: 503 });
    const res = await fetch(`${stack.url}/v1/sandboxes`, {
      headers: { authorization: `Bearer ${stack.apiKey}` },
    });
    const { items } = (await res.json()) as { items: { id: string; state: string }[] };
    expect(items.filter((s) => s.state === "running" || s.state === "pending")).toEqual([]);
    const fx = stack.agents[0];
    if (!fx) throw new Error("no agent");
    expect(fx.agent.manager.list()).toEqual([]);
    expect(findHostLeftovers(fx.dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  });
});
