import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startResponder, type TestResponder } from "../../packages/host-agent/test/dns-test-server.js";
import { type EgressWorld, startEgressWorld } from "../../packages/host-agent/test/egress-test-world.js";
import { type AgentFixture, exec, type GuestRoute, spawnAgentProcess, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * Egress policy on real VMs through a real agent. The "world" is a namespace on this machine
 * (198.51.100.128/26 only) whose veth is the agent's uplink; the agent's DNS upstream is a test
 * responder that knows allowed.test and other.test (both on the world's first address).
 * Its own prefix and slots, since its uplink differs from the other agent tests'.
 */
const PREFIX = "wege";

const TCP_PY =
  "import socket,sys; s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=4); print(s.recv(100).decode().strip())";
const UDP_PY =
  "import socket,sys; s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.settimeout(4); s.connect((sys.argv[1],int(sys.argv[2]))); s.send(b'ping'); print(s.recv(100).decode())";

describe("host agent: per-sandbox egress policy", () => {
  let world: EgressWorld;
  let upstream: TestResponder;
  let fx: AgentFixture;
  let id = "";

  const run = (sandbox: string, command: string, user?: string) =>
    exec(fx, sandbox, command, { timeoutMs: 60_000, ...(user ? { user } : {}) });
  const tcp = async (sandbox: string, address: string, port = 7000) =>
    (await run(sandbox, `python3 -c "${TCP_PY}" ${address} ${port}`)).stdout.trim();
  const udp = async (sandbox: string, address: string) =>
    (await run(sandbox, `python3 -c "${UDP_PY}" ${address} 7001`)).stdout.trim();
  /** curl with the name pinned to an address, so only SNI/Host carry the name. */
  const curl = async (sandbox: string, url: string, name: string, address: string) => {
    const port = url.startsWith("https") ? 443 : 80;
    const r = await run(sandbox, `curl -sk -m 8 --resolve ${name}:${port}:${address} ${url}`);
    return r.exitCode === 0 ? r.stdout.trim() : `curl exit ${r.exitCode}`;
  };
  const setPolicy = async (sandbox: string, allowOut: string[], denyOut: string[]) =>
    (await fx.client.updateNetworkPolicy({ sandboxId: sandbox, networkPolicy: { allowOut, denyOut } }))
      .sandbox;

  beforeAll(async () => {
    world = await startEgressWorld(PREFIX, 128);
    upstream = await startResponder({ records: { "allowed.test": [world.a1], "other.test": [world.a1] } });
    fx = await startAgent({
      netNamePrefix: PREFIX,
      firstSlot: 2600,
      uplinkInterface: world.hostLink,
      dnsUpstreams: [`${upstream.host}:${upstream.port}`],
      egressProxyPort: 15181,
    });
    const { sandbox } = await fx.client.createSandbox({
      image: "base",
      networkPolicy: { allowOut: [], denyOut: ["0.0.0.0/0"] },
    });
    id = sandbox?.sandboxId ?? "";
    expect(sandbox?.networkPolicy).toMatchObject({ allowOut: [], denyOut: ["0.0.0.0/0"] });
  }, 300_000);

  afterAll(async () => {
    await fx?.close();
    await upstream?.close();
    await world?.stop();
    expect(findHostLeftovers(fx.dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  });

  it("deny-all blocks TCP and UDP; an allowed CIDR connects and a denied one does not (updated live)", async () => {
    expect(await tcp(id, world.a1)).toBe("");
    expect(await udp(id, world.a1)).toBe("");
    const info = await setPolicy(id, [world.a1], ["0.0.0.0/0"]);
    expect(info?.networkPolicy?.allowOut).toEqual([`${world.a1}/32`]);
    expect(await tcp(id, world.a1)).toBe(`tcp ${world.a1}`);
    expect(await udp(id, world.a1)).toBe("udp ping");
    expect(await tcp(id, world.a2)).toBe("");
    const bad = await fx.client
      .updateNetworkPolicy({ sandboxId: id, networkPolicy: { allowOut: ["x.test"], denyOut: [] } })
      .catch((e: unknown) => e as Error);
    expect(String(bad)).toContain("domain_needs_deny_all");
  }, 180_000);

  it("domain entries: allowed.test passes by SNI and Host, other.test on the same address does not", async () => {
    await setPolicy(id, ["allowed.test"], ["0.0.0.0/0"]);
    expect(await curl(id, "https://allowed.test/", "allowed.test", world.a1)).toBe("tls allowed.test");
    expect(await curl(id, "https://other.test/", "other.test", world.a1)).toMatch(/^curl exit/);
    expect(await curl(id, "http://allowed.test/", "allowed.test", world.a1)).toBe("http allowed.test");
    expect(await curl(id, "http://other.test/", "other.test", world.a1)).toMatch(/^curl exit/);
    expect(await tcp(id, world.a1)).toBe("");
  }, 180_000);

  it("a guest that edits /etc/resolv.conf and its routes gains nothing", async () => {
    const r = await run(
      id,
      [
        "echo 'nameserver 8.8.8.8' > /etc/resolv.conf",
        "getent hosts allowed.test; echo allowed=$?",
        "getent hosts other.test; echo other=$?",
        `ip addr add ${world.a2}/32 dev eth0 2>/dev/null; ip route replace ${world.a1}/32 dev eth0 src ${world.a2}`,
        `python3 -c "${TCP_PY}" ${world.a1} 7000; echo tcp=$?`,
        `ip route del ${world.a1}/32; ip addr del ${world.a2}/32 dev eth0`,
        "echo 'nameserver 169.254.0.22' > /etc/resolv.conf",
      ].join("; "),
      "root",
    );
    expect(r.stdout).toMatch(new RegExp(`^${world.a1.replaceAll(".", "\\.")}\\s+allowed\\.test$`, "m"));
    expect(r.stdout).toContain("allowed=0");
    expect(r.stdout).toContain("other=2");
    expect(r.stdout).not.toMatch(/^tcp 198/m);
    expect(upstream.asked.map((q) => q.name)).not.toContain("other.test");
  }, 120_000);

  it("the policy survives pause/resume, and goes to a snapshot's sandboxes and forks", async () => {
    await fx.client.pauseSandbox({ sandboxId: id });
    const resumed = (await fx.client.resumeSandbox({ sandboxId: id })).sandbox;
    expect(resumed?.networkPolicy?.allowOut).toEqual(["allowed.test"]);
    expect(await curl(id, "https://allowed.test/", "allowed.test", world.a2)).toBe("tls allowed.test");
    expect(await tcp(id, world.a1)).toBe("");

    const { snapshot } = await fx.client.createSnapshot({ sandboxId: id, name: "egress-snap" });
    expect(snapshot?.networkPolicy?.allowOut).toEqual(["allowed.test"]);
    const clone = (await fx.client.createSandbox({ snapshot: "egress-snap" })).sandbox;
    expect(clone?.networkPolicy?.allowOut).toEqual(["allowed.test"]);
    const cloneId = clone?.sandboxId ?? "";
    expect(await tcp(cloneId, world.a1)).toBe("");
    expect(await curl(cloneId, "https://allowed.test/", "allowed.test", world.a1)).toBe("tls allowed.test");

    const forks = (await fx.client.forkSandbox({ sandboxId: id, count: 1 })).sandboxes;
    const forkId = forks[0]?.sandboxId ?? "";
    expect(forks[0]?.networkPolicy?.allowOut).toEqual(["allowed.test"]);
    expect(await tcp(forkId, world.a1)).toBe("");

    // A paused sandbox's update is stored and applied when it resumes.
    await fx.client.pauseSandbox({ sandboxId: cloneId });
    await setPolicy(cloneId, [], []);
    await fx.client.resumeSandbox({ sandboxId: cloneId });
    expect(await tcp(cloneId, world.a2)).toBe(`tcp ${world.a2}`);
    for (const s of [cloneId, forkId]) await fx.client.destroySandbox({ sandboxId: s });
    await fx.client.deleteSnapshot({ name: "egress-snap", force: true });
  }, 600_000);
});

describe("host agent: egress policy after an agent crash", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "wrenn-agent-egress-"));
  const token = randomBytes(24).toString("hex");
  let world: EgressWorld;
  let upstream: TestResponder;

  beforeAll(async () => {
    world = await startEgressWorld(PREFIX, 128);
    upstream = await startResponder({ records: { "allowed.test": [world.a1] } });
  });

  afterAll(async () => {
    await upstream?.close();
    await world?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("the next agent re-applies the adopted sandbox's policy and its proxy listens again", async () => {
    const upstreamAddress = `${upstream.host}:${upstream.port}`;
    const probe = async (route: GuestRoute, sandbox: string) => {
      const r = await exec(
        route,
        sandbox,
        `curl -sk -m 8 --resolve allowed.test:443:${world.a2} https://allowed.test/; echo; python3 -c "${TCP_PY}" ${world.a1} 7000; echo tcp=$?`,
        { timeoutMs: 60_000 },
      );
      return r.stdout;
    };
    const first = await spawnAgentProcess(dataDir, token, {
      WRENN_NET_PREFIX: PREFIX,
      WRENN_FIRST_SLOT: "2600",
      WRENN_UPLINK_INTERFACE: world.hostLink,
      WRENN_DNS_UPSTREAMS: upstreamAddress,
      WRENN_EGRESS_PROXY_PORT: "15181",
    });
    let id = "";
    try {
      const { envdAccessToken } = first;
      const created = await first.client.createSandbox({
        image: "base",
        envdAccessToken,
        networkPolicy: { allowOut: ["allowed.test"], denyOut: ["0.0.0.0/0"] },
      });
      id = created.sandbox?.sandboxId ?? "";
      const before = await probe(first, id);
      expect(before).toContain("tls allowed.test");
      expect(before).not.toContain("tcp=0");
    } finally {
      await first.crash();
    }
    const second = await startAgent(
      {
        netNamePrefix: PREFIX,
        firstSlot: 2600,
        uplinkInterface: world.hostLink,
        dnsUpstreams: [upstreamAddress],
        egressProxyPort: 15181,
      },
      { dataDir, token },
    );
    try {
      const info = (await second.client.getSandbox({ sandboxId: id })).sandbox;
      expect(info?.networkPolicy?.allowOut).toEqual(["allowed.test"]);
      const after = await probe(second, id);
      expect(after).toContain("tls allowed.test");
      expect(after).not.toContain("tcp=0");
    } finally {
      await second.close({ destroySandboxes: true, keepDataDir: true });
    }
    expect(findHostLeftovers(dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, 300_000);
});
