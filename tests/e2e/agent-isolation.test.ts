import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotAddresses } from "../../packages/host-agent/src/network/slot-addresses.js";
import { type AgentFixture, exec, startAgent, TEST_NET_PREFIX } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/** A sandbox's slot from its host-reachable address (10.11.0.0 + slot). */
function slotOf(hostIp: string): number {
  const [, , hi, lo] = hostIp.split(".").map(Number) as [number, number, number, number];
  return hi * 256 + lo;
}

/** Three sandboxes side by side: each its own VM, disk and network, none reaching another. */
describe("host agent: three sandboxes at once", () => {
  let fx: AgentFixture;
  const sandboxes: { id: string; hostIp: string }[] = [];

  beforeAll(async () => {
    fx = await startAgent();
    const created = await Promise.all(
      [1, 2, 3].map((n) => fx.client.createSandbox({ image: "base", envVars: { WHO: `sandbox-${n}` } })),
    );
    for (const c of created)
      sandboxes.push({ id: c.sandbox?.sandboxId ?? "", hostIp: c.sandbox?.hostIp ?? "" });
  }, 240_000);

  afterAll(async () => {
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("gives each its own disk and environment", async () => {
    for (const [i, s] of sandboxes.entries()) {
      await exec(fx, s.id, `echo $WHO > /home/user/who`);
      expect(s.hostIp).toMatch(/^10\.11\./);
      expect(new Set(sandboxes.map((x) => x.hostIp)).size).toBe(3);
      expect((await exec(fx, s.id, "cat /home/user/who")).stdout).toBe(`sandbox-${i + 1}\n`);
    }
  });

  it("keeps every sandbox from reaching the others and the host's own services", async () => {
    const [a, b, c] = sandboxes as [(typeof sandboxes)[0], (typeof sandboxes)[0], (typeof sandboxes)[0]];
    // envd listens on 49983 in every guest; a guest may not open a connection to another.
    const own = slotAddresses(slotOf(a.hostIp), TEST_NET_PREFIX);
    const other = slotAddresses(slotOf(b.hostIp), TEST_NET_PREFIX);
    for (const target of [b.hostIp, c.hostIp, other.vethHostIp, other.vethNsIp]) {
      const res = await exec(
        fx,
        a.id,
        `curl -s -m 2 -o /dev/null -w '%{http_code}' http://${target}:49983/health; echo " rc=$?"`,
      );
      expect(res.stdout, `reached ${target}`).not.toMatch(/^204/);
    }
    // The agent's own RPC port on the host's loopback-facing addresses is out of reach too.
    const agent = await exec(
      fx,
      a.id,
      `curl -s -m 2 http://${own.vethHostIp}:${fx.agent.port}/; echo " rc=$?"`,
    );
    expect(agent.stdout).toMatch(/rc=(7|28)/);
    // While the host reaches each of them.
    for (const s of sandboxes) {
      const health = await fetch(`http://${s.hostIp}:49983/health`);
      expect(health.status).toBe(204);
    }
  });

  it("destroys one without disturbing the others", async () => {
    const [a, b, c] = sandboxes as [(typeof sandboxes)[0], (typeof sandboxes)[0], (typeof sandboxes)[0]];
    await fx.client.destroySandbox({ sandboxId: b.id });
    expect((await exec(fx, a.id, "cat /home/user/who")).stdout).toBe("sandbox-1\n");
    expect((await exec(fx, c.id, "cat /home/user/who")).stdout).toBe("sandbox-3\n");
    const left = findHostLeftovers(fx.dataDir);
    expect(left.namespaces).toHaveLength(2);
    expect(left.qemuProcesses).toHaveLength(2);
  });
});
