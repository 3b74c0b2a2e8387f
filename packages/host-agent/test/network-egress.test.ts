import { execFile, spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { promisify } from "node:util";
import { createSilentLogger } from "@wrenn/shared";
import { type NetworkPolicy, normalizeNetworkPolicy } from "@wrenn/shared/network-policy";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DnsForwarder } from "../src/dns/dns-forwarder.js";
import { HostUpstreams } from "../src/dns/upstreams.js";
import { EgressProxy, policyAllowsName } from "../src/egress/egress-proxy.js";
import { proxyTargetRefusal } from "../src/egress/proxy-targets.js";
import { upstreamResolver } from "../src/egress/upstream-resolve.js";
import { NetnsNetworkManager } from "../src/network/netns-network.js";
import type { SandboxNetwork } from "../src/network/sandbox-network.js";
import { startResponder, type TestResponder } from "./dns-test-server.js";
import { type EgressWorld, startEgressWorld } from "./egress-test-world.js";
import { sh, startTestGuest, type TestGuest } from "./network-test-guest.js";

/**
 * Egress policy on real namespaces and rules, as root, without VMs: a guest stand-in (a
 * namespace behind the sandbox's real TAP, see network-test-guest.ts) connects to servers in a
 * "world" namespace that stands in for the uplink (198.51.100.64/26 only; nothing leaves the
 * host). Prefix "wregs", slots ≥ 32101, so it runs beside a live agent and the other network tests.
 */

const PREFIX = "wregs";
const IS_ROOT =
  process.getuid?.() === 0 &&
  spawnSync("python3", ["-c", "pass"]).status === 0 &&
  spawnSync("openssl", ["version"]).status === 0;
const A1 = "198.51.100.66";
const A2 = "198.51.100.67";
const DNS_PORT = 10153;
const PROXY_PORT = 10180;
const SLOT = 32101;

/** One client action inside the guest; prints {"ok":true,"data"} or {"ok":false,"error"}. */
const GUEST_JS = `
const [mode, host, port, extra] = process.argv.slice(1);
const done = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
setTimeout(() => done({ ok: false, error: "timeout" }), 4000);
let data = "";
const stream = (s) => { s.on("data", (d) => { data += d; }); s.on("end", () => done({ ok: true, data: data.trim() })); s.on("error", (e) => done({ ok: false, error: e.code || e.message })); };
if (mode === "tcp") stream(require("node:net").connect(Number(port), host));
else if (mode === "tls") { const s = require("node:tls").connect({ host, port: Number(port), servername: extra, rejectUnauthorized: false }, () => s.write("GET / HTTP/1.1\\r\\nHost: " + extra + "\\r\\nConnection: close\\r\\n\\r\\n")); stream(s); }
else if (mode === "http") { const s = require("node:net").connect(Number(port), host, () => s.write("GET / HTTP/1.1\\r\\nHost: " + extra + "\\r\\nConnection: close\\r\\n\\r\\n")); stream(s); }
else if (mode === "udp2") { const s = require("node:dgram").createSocket("udp4"); const got = []; s.on("error", (e) => done({ ok: false, error: e.code })); s.on("message", (m) => { got.push(String(m)); if (got.length === 2) done({ ok: true, data: got.join(",") }); else setTimeout(() => s.send("again"), 1500); }); setTimeout(() => done({ ok: false, error: "timeout", data: got.join(",") }), 3800); s.connect(Number(port), host, () => s.send("ping")); }
else if (mode === "udp") { const s = require("node:dgram").createSocket("udp4"); s.on("error", (e) => done({ ok: false, error: e.code })); s.on("message", (m) => done({ ok: true, data: String(m) })); s.connect(Number(port), host, () => s.send("ping")); }
else if (mode === "dns") {
  const labels = extra.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
  const s = require("node:dgram").createSocket("udp4");
  s.on("error", (e) => done({ ok: false, error: e.code }));
  s.on("message", (m) => { const an = m.readUInt16BE(6); const rcode = m.readUInt16BE(2) & 15; const addrs = []; let at = q.length; for (let i = 0; i < an; i++) { at += 2; const len = m.readUInt16BE(at + 8); if (len === 4) addrs.push([...m.subarray(at + 10, at + 14)].join(".")); at += 10 + len; } done({ ok: true, data: rcode + " " + addrs.join(",") }); });
  s.send(q, Number(port), host);
}
`;

type Result = { ok: true; data: string } | { ok: false; error: string; data?: string };

function guestDo(netns: string, mode: string, host: string, port: number, extra = ""): Promise<Result> {
  return promisify(execFile)(
    "ip",
    ["netns", "exec", netns, "node", "-e", GUEST_JS, mode, host, String(port), extra],
    {
      encoding: "utf8",
      timeout: 20_000,
    },
  ).then(({ stdout }) => JSON.parse(stdout) as Result);
}

const policy = (input: Parameters<typeof normalizeNetworkPolicy>[0]): NetworkPolicy =>
  normalizeNetworkPolicy(input);

describe.skipIf(!IS_ROOT)("egress policy (root, real namespaces)", () => {
  let manager: NetnsNetworkManager;
  let upstream: TestResponder;
  let dns: DnsForwarder;
  let proxy: EgressProxy;
  let world: EgressWorld | undefined;
  let net: SandboxNetwork;
  let guest: TestGuest;

  beforeAll(async () => {
    world = await startEgressWorld(PREFIX, 64);
    // Both names live on A1: only the name the connection asks for tells them apart.
    upstream = await startResponder({
      records: {
        "allowed.test": [A1],
        "other.test": [A1],
        "inside.test": ["10.1.2.3"],
        // The world veth's host end: an address of the host itself.
        "host.test": ["198.51.100.65"],
      },
    });
    const upstreams = await HostUpstreams.create({
      kind: "fixed",
      upstreams: [{ host: upstream.host, port: upstream.port, family: 4 }],
    });
    const policyOf = (slot: number) => manager.policyOf(slot);
    dns = new DnsForwarder({
      upstreams,
      port: DNS_PORT,
      upstreamTimeoutMs: 1000,
      maxInflightPerSandbox: 16,
      allowsName: (slot, name) => policyAllowsName(policyOf(slot), name),
      logger: createSilentLogger(),
    });
    proxy = new EgressProxy({
      port: PROXY_PORT,
      policyOf,
      resolve: upstreamResolver(upstreams, 1000),
      refuseTarget: proxyTargetRefusal(),
      helloTimeoutMs: 1000,
      logger: createSilentLogger(),
    });
    manager = new NetnsNetworkManager(createSilentLogger(), {
      namePrefix: PREFIX,
      uplinkInterface: world.hostLink,
      dns,
      proxy,
    });
    await manager.ensureHostRules();
    net = await manager.create(SLOT, policy({ allowInternetAccess: false }));
    guest = await startTestGuest(net.netnsName, `${PREFIX}-guest-${SLOT}`, net.mtu);
  }, 60_000);

  afterAll(async () => {
    await guest?.stop();
    if (manager) {
      await manager.sweep(new Set());
      await manager.teardownHostRules();
    }
    expect(proxy?.addressOf(SLOT)).toBeUndefined();
    await Promise.all([dns?.close(), proxy?.close(), upstream?.close()]);
    await world?.stop();
    const left = [
      sh("ip", ["netns", "list"]),
      sh("ip", ["-o", "link", "show"]),
      sh("iptables-save", []),
    ].join("\n");
    expect(left).not.toMatch(new RegExp(`${PREFIX}|${PREFIX.toUpperCase()}`));
  });

  it("deny-all: TCP is reset and UDP refused, fast", async () => {
    const t = performance.now();
    expect(await guestDo(guest.netns, "tcp", A1, 7000)).toEqual({ ok: false, error: "ECONNREFUSED" });
    expect(performance.now() - t).toBeLessThan(3000);
    expect((await guestDo(guest.netns, "udp", A1, 7001)).ok).toBe(false);
  });

  it("an allowed CIDR connects, a denied one does not; updates apply without rebuilding", async () => {
    await manager.applyPolicy(SLOT, policy({ allowOut: [A1], denyOut: ["198.51.100.0/24"] }));
    expect(await guestDo(guest.netns, "tcp", A1, 7000)).toEqual({ ok: true, data: `tcp ${A1}` });
    expect(await guestDo(guest.netns, "udp", A1, 7001)).toEqual({ ok: true, data: "udp ping" });
    expect(await guestDo(guest.netns, "tcp", A2, 7000)).toEqual({ ok: false, error: "ECONNREFUSED" });
    await manager.applyPolicy(SLOT, policy({}));
    expect(await guestDo(guest.netns, "tcp", A2, 7000)).toEqual({ ok: true, data: `tcp ${A2}` });
    // Open, yet the always-blocked ranges stay out of reach (the host's own 10.12 veth too).
    expect((await guestDo(guest.netns, "tcp", net.vethHostIp, 22)).ok).toBe(false);
  });

  it("domains: TLS by SNI and HTTP by Host through the proxy, whatever address the guest dials", async () => {
    await manager.applyPolicy(SLOT, policy({ allowOut: ["allowed.test"], allowInternetAccess: false }));
    // The guest dials A2 (where nothing listens on 443): the proxy resolves the name itself.
    const tls = await guestDo(guest.netns, "tls", A2, 443, "allowed.test");
    expect(tls.ok && tls.data.endsWith("\r\n\r\ntls allowed.test")).toBe(true);
    // Refused by the proxy: the connection is reset, not left hanging.
    expect(await guestDo(guest.netns, "tls", A1, 443, "other.test")).toEqual({
      ok: false,
      error: "ECONNRESET",
    });
    const http = await guestDo(guest.netns, "http", A1, 80, "allowed.test");
    expect(http.ok && http.data.endsWith("\r\n\r\nhttp allowed.test")).toBe(true);
    expect((await guestDo(guest.netns, "http", A1, 80, "other.test")).ok).toBe(false);
    // Other ports stay denied.
    expect(await guestDo(guest.netns, "tcp", A1, 7000)).toEqual({ ok: false, error: "ECONNREFUSED" });
  });

  it("DNS: every resolver the guest names is the forwarder, which refuses names the domains do not allow", async () => {
    // 8.8.8.8 is never reached: the namespace DNATs all port-53 traffic to the forwarder.
    expect(await guestDo(guest.netns, "dns", "8.8.8.8", 53, "allowed.test")).toEqual({
      ok: true,
      data: `0 ${A1}`,
    });
    expect(await guestDo(guest.netns, "dns", "8.8.8.8", 53, "other.test")).toEqual({ ok: true, data: "5 " });
    expect(await guestDo(guest.netns, "dns", "169.254.0.22", 53, "other.test")).toEqual({
      ok: true,
      data: "5 ",
    });
    await manager.applyPolicy(SLOT, policy({}));
    expect(await guestDo(guest.netns, "dns", A2, 53, "other.test")).toEqual({ ok: true, data: `0 ${A1}` });
    expect(upstream.asked.map((q) => q.name)).not.toContain("8.8.8.8");
  });

  it("a client that never sends its hello is reset after the hello timeout", async () => {
    await manager.applyPolicy(SLOT, policy({ allowOut: ["allowed.test"], allowInternetAccess: false }));
    const t = performance.now();
    // The guest's "tcp" mode sends nothing and waits for data: the proxy resets it (1 s here).
    expect(await guestDo(guest.netns, "tcp", A1, 443)).toEqual({ ok: false, error: "ECONNRESET" });
    expect(performance.now() - t).toBeGreaterThan(900);
  });

  it("a name resolving into a blocked range is refused by the proxy", async () => {
    await manager.applyPolicy(SLOT, policy({ allowOut: ["inside.test"], allowInternetAccess: false }));
    expect((await guestDo(guest.netns, "http", A1, 80, "inside.test")).ok).toBe(false);
  });

  it("a tightened policy cuts what the guest already has open: the next packet meets the new rules", async () => {
    await manager.applyPolicy(SLOT, policy({}));
    const exchange = guestDo(guest.netns, "udp2", A1, 7001);
    // The first ping is answered at once; the second goes 1.5 s later, after the update.
    await new Promise((r) => setTimeout(r, 700));
    await manager.applyPolicy(SLOT, policy({ allowInternetAccess: false }));
    // The second datagram is rejected in the namespace (ICMP admin-prohibited): the socket says so.
    expect(await exchange).toEqual({ ok: false, error: "EHOSTUNREACH" });
    await manager.applyPolicy(SLOT, policy({}));
    expect(await guestDo(guest.netns, "udp2", A1, 7001)).toEqual({ ok: true, data: "udp ping,udp again" });
  });

  it("deny-all without domain entries resolves no name; the proxy never dials the host's own addresses", async () => {
    await manager.applyPolicy(SLOT, policy({ allowInternetAccess: false }));
    expect(await guestDo(guest.netns, "dns", "169.254.0.22", 53, "allowed.test")).toEqual({
      ok: true,
      data: "5 ",
    });
    // Something answers there, so only the proxy's refusal stops the guest.
    const hostServer = createServer((sock) => sock.end("HTTP/1.0 200 OK\r\n\r\nhost"));
    await new Promise<void>((resolve) => hostServer.listen(80, "198.51.100.65", resolve));
    try {
      await manager.applyPolicy(SLOT, policy({ allowOut: ["host.test"], allowInternetAccess: false }));
      expect(await guestDo(guest.netns, "http", A1, 80, "host.test")).toEqual({
        ok: false,
        error: "ECONNRESET",
      });
    } finally {
      await new Promise((resolve) => hostServer.close(resolve));
    }
  });
});
