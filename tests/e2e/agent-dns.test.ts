import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startResponder, type TestResponder } from "../../packages/host-agent/test/dns-test-server.js";
import { type AgentFixture, exec, spawnAgentProcess, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * A real VM resolves names through its gateway: the agent's forwarder, whose upstream here is
 * a test resolver on the host's loopback that knows a made-up name (no public DNS involved).
 */
describe("host agent: sandbox DNS through the gateway", () => {
  let upstream: TestResponder;
  let fx: AgentFixture;
  let id = "";

  beforeAll(async () => {
    upstream = await startResponder({ records: { "probe.wrenn.test": ["10.1.2.3"] } });
    fx = await startAgent({ dnsUpstreams: [`${upstream.host}:${upstream.port}`] });
    const { sandbox } = await fx.client.createSandbox({ image: "base" });
    id = sandbox?.sandboxId ?? "";
  }, 240_000);

  afterAll(async () => {
    await fx?.close();
    await upstream?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("the guest's resolver is its gateway, and a name resolves through it over UDP and TCP", async () => {
    expect((await exec(fx, id, "cat /etc/resolv.conf")).stdout).toBe("nameserver 169.254.0.22\n");
    const udp = await exec(fx, id, "getent hosts probe.wrenn.test");
    expect(udp.stdout).toMatch(/^10\.1\.2\.3\s+probe\.wrenn\.test$/m);
    // `use-vc` makes the C library ask over TCP.
    const tcp = await exec(
      fx,
      id,
      "cp /etc/resolv.conf /tmp/r && echo 'options use-vc' >> /etc/resolv.conf && getent hosts probe.wrenn.test; cp /tmp/r /etc/resolv.conf",
      { user: "root" },
    );
    expect(tcp.stdout).toMatch(/^10\.1\.2\.3\s+probe\.wrenn\.test$/m);
    const transports = upstream.asked.filter((q) => q.name === "probe.wrenn.test").map((q) => q.transport);
    expect(transports).toContain("udp");
    expect(transports).toContain("tcp");
    // A name the upstream does not know: NXDOMAIN, getent exits 2.
    expect((await exec(fx, id, "getent hosts nope.wrenn.test")).exitCode).toBe(2);
  });

  it("still resolves after a pause and resume (the restored guest keeps its gateway as resolver)", async () => {
    await fx.client.pauseSandbox({ sandboxId: id });
    await fx.client.resumeSandbox({ sandboxId: id });
    const r = await exec(fx, id, "getent hosts probe.wrenn.test");
    expect(r.stdout).toMatch(/^10\.1\.2\.3\s+probe\.wrenn\.test$/m);
  }, 180_000);
});

describe("host agent: sandbox DNS after an agent crash", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "wrenn-agent-dns-"));
  const token = randomBytes(24).toString("hex");
  let upstream: TestResponder;

  beforeAll(async () => {
    upstream = await startResponder({ records: { "probe.wrenn.test": ["10.1.2.3"] } });
  });

  afterAll(async () => {
    await upstream?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("the next agent listens again for the sandboxes it adopts", async () => {
    const upstreamAddress = `${upstream.host}:${upstream.port}`;
    const first = await spawnAgentProcess(dataDir, token, { WRENN_DNS_UPSTREAMS: upstreamAddress });
    let id = "";
    try {
      const { envdAccessToken } = first;
      id = (await first.client.createSandbox({ image: "base", envdAccessToken })).sandbox?.sandboxId ?? "";
      expect((await exec(first, id, "getent hosts probe.wrenn.test")).stdout).toMatch(/^10\.1\.2\.3\s/m);
    } finally {
      await first.crash();
    }
    const second = await startAgent({ dnsUpstreams: [upstreamAddress] }, { dataDir, token });
    try {
      const r = await exec(second, id, "getent hosts probe.wrenn.test");
      expect(r.stdout).toMatch(/^10\.1\.2\.3\s+probe\.wrenn\.test$/m);
    } finally {
      await second.close({ destroySandboxes: true, keepDataDir: true });
    }
    expect(findHostLeftovers(dataDir)).toEqual(NO_LEFTOVERS);
  }, 300_000);
});
