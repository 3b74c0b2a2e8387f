import { SandboxState, TimeoutAction } from "@wrenn/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("host agent: inactivity timeout", () => {
  let fx: AgentFixture;
  beforeAll(async () => {
    fx = await startAgent();
  });
  afterAll(async () => {
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("is extended by activity and PingSandbox, then destroys an idle sandbox and frees everything", async () => {
    const { sandbox } = await fx.client.createSandbox({
      image: "base",
      timeoutSec: 8,
      timeoutAction: TimeoutAction.DESTROY,
    });
    const sandboxId = sandbox?.sandboxId ?? "";
    const firstExpiry = sandbox?.expiresAt?.seconds ?? 0n;
    await sleep(4000);
    // Activity (an exec) pushes the deadline out.
    expect((await exec(fx, sandboxId, "echo busy")).stdout).toBe("busy\n");
    await sleep(2000);
    const pinged = await fx.client.pingSandbox({ sandboxId, timeoutSec: 8 });
    expect(pinged.sandbox?.expiresAt?.seconds ?? 0n).toBeGreaterThan(firstExpiry);
    await sleep(3000);
    // 9 s after creation with an 8 s timeout: alive only because of the exec and the ping.
    expect((await fx.client.getSandbox({ sandboxId })).sandbox?.sandboxId).toBe(sandboxId);
    // Idle from here: gone within the timeout plus a margin.
    let gone = false;
    for (let i = 0; i < 60 && !gone; i++) {
      await sleep(500);
      gone = await fx.client.getSandbox({ sandboxId }).then(
        () => false,
        () => true,
      );
    }
    expect(gone).toBe(true);
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  }, 180_000);

  it("pauses an idle sandbox by default (VM and slot freed), and it resumes on request", async () => {
    const { sandbox } = await fx.client.createSandbox({ image: "base", timeoutSec: 5 });
    const sandboxId = sandbox?.sandboxId ?? "";
    await exec(fx, sandboxId, "echo before > /home/user/idle.txt");
    // Paused, and the pause finished (`busy` false): the record says paused before the VM is
    // gone (so a crash mid-way still finds the snapshot), which observers must not act on.
    let state = SandboxState.RUNNING;
    let busy = true;
    for (let i = 0; i < 80 && (state !== SandboxState.PAUSED || busy); i++) {
      await sleep(250);
      const seen = (await fx.client.getSandbox({ sandboxId })).sandbox;
      state = seen?.state ?? SandboxState.UNSPECIFIED;
      busy = seen?.busy ?? false;
    }
    expect(state).toBe(SandboxState.PAUSED);
    const paused = (await fx.client.getSandbox({ sandboxId })).sandbox;
    expect(paused?.vmmPid).toBe(0);
    expect(findHostLeftovers(fx.dataDir).qemuProcesses).toEqual([]);
    await fx.client.resumeSandbox({ sandboxId, timeoutSec: 600 });
    expect((await exec(fx, sandboxId, "cat /home/user/idle.txt")).stdout).toBe("before\n");
    await fx.client.destroySandbox({ sandboxId });
  }, 180_000);
});
