import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DnsForwarder } from "../src/dns/dns-forwarder.js";
import { HostUpstreams } from "../src/dns/upstreams.js";
import { NetnsNetworkManager } from "../src/network/netns-network.js";
import {
  ENVD_PORT,
  GUEST_MAC,
  type SandboxNetwork,
  SlotAddressesTakenError,
  TAP_MAC,
  TAP_NAME,
} from "../src/network/sandbox-network.js";
import { startResponder, type TestResponder } from "./dns-test-server.js";
import { connectFrom, sh, startServer, startTestGuest, type TestGuest } from "./network-test-guest.js";

/**
 * Real namespaces, links and iptables rules, as root. Everything uses the name prefix "wrtst"
 * (namespaces wrtst-ns-N, chains WRTST-*, tags wrtst-slot-N) and slots ≥ 32001, so the tests
 * can run beside a live agent (prefix "wrenn", low slots) without touching its networks.
 * An "outside world" namespace stands in for the uplink (the tests never leave the host).
 */

const PREFIX = "wrtst";
// Namespaces and iptables need root; the guest stand-in's frame relay is a python3 script.
const IS_ROOT = process.getuid?.() === 0 && spawnSync("python3", ["-c", "pass"]).status === 0;
const WORLD_NS = `${PREFIX}-world`;
const WORLD_HOST_LINK = `${PREFIX}-wh`;
const WORLD_LINK = `${PREFIX}-ww`;
const WORLD_HOST_IP = "198.51.100.1";
const WORLD_IP = "198.51.100.2";
/** The forwarder's port on each slot's veth address (guests still ask their gateway on 53). */
const DNS_PORT = 10053;
const S1 = 32001;
const S2 = 32002;
const S3 = 32003;

interface Leftovers {
  namespaces: string[];
  links: string[];
  rules: string[];
}

function leftovers(slot?: number): Leftovers {
  const tag = `${PREFIX}-`;
  const slotRe =
    slot === undefined ? new RegExp(`${PREFIX}`, "i") : new RegExp(`${PREFIX}-(ns|vh|vn|slot)-${slot}\\b`);
  return {
    namespaces: sh("ip", ["netns", "list"])
      .split("\n")
      .map((l) => l.split(" ")[0] ?? "")
      .filter((l) => l.startsWith(tag) && slotRe.test(l)),
    links: sh("ip", ["-o", "link", "show"])
      .split("\n")
      .filter((l) => l.includes(tag) && slotRe.test(l)),
    rules: sh("iptables-save", [])
      .split("\n")
      .filter((l) => slotRe.test(l)),
  };
}

/** Runs a cleanup command whose target may already be gone. */
function tryRun(file: string, args: string[]): void {
  try {
    execFileSync(file, args, { stdio: "ignore" });
  } catch {
    // already gone
  }
}

const NOTHING: Leftovers = { namespaces: [], links: [], rules: [] };

function hostMainIp(): string {
  const dev = (JSON.parse(sh("ip", ["-j", "-4", "route", "show", "default"])) as Array<{ dev: string }>)[0]
    ?.dev;
  if (!dev) throw new Error("no default route");
  const addrs = JSON.parse(sh("ip", ["-j", "-4", "addr", "show", "dev", dev])) as Array<{
    addr_info: Array<{ local: string }>;
  }>;
  const ip = addrs[0]?.addr_info[0]?.local;
  if (!ip) throw new Error(`no address on ${dev}`);
  return ip;
}

/**
 * Asks `server:port` for an A record over UDP or TCP from inside a namespace; prints
 * {"ok":true,"rcode":N,"addresses":[...]} or {"ok":false,"error":...}.
 */
const DNS_CLIENT_JS = `
const [server, port, name, transport, timeoutMs] = process.argv.slice(1);
const labels = name.split(".").map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
const q = Buffer.concat([Buffer.from([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, 0, 1, 0, 1])]);
const done = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
setTimeout(() => done({ ok: false, error: "timeout" }), Number(timeoutMs));
const parse = (m) => {
  const an = m.readUInt16BE(6);
  const addresses = [];
  let at = q.length;
  for (let i = 0; i < an; i++) { at += 2; const rdlen = m.readUInt16BE(at + 8); if (rdlen === 4) addresses.push([...m.subarray(at + 10, at + 14)].join(".")); at += 10 + rdlen; }
  return { ok: true, rcode: m.readUInt16BE(2) & 15, addresses };
};
if (transport === "udp") {
  const s = require("node:dgram").createSocket("udp4");
  s.on("error", (e) => done({ ok: false, error: e.code }));
  s.on("message", (m) => done(parse(m)));
  s.send(q, Number(port), server);
} else {
  const s = require("node:net").connect(Number(port), server);
  let buf = Buffer.alloc(0);
  s.on("error", (e) => done({ ok: false, error: e.code }));
  s.on("connect", () => { const l = Buffer.alloc(2); l.writeUInt16BE(q.length); s.write(Buffer.concat([l, q])); });
  s.on("data", (d) => { buf = Buffer.concat([buf, d]); if (buf.length >= 2 + buf.readUInt16BE(0)) done(parse(buf.subarray(2))); });
}
`;

type DnsResult = { ok: true; rcode: number; addresses: string[] } | { ok: false; error: string };

/** Asynchronous: the forwarder answering runs in this process's event loop. */
async function dnsFrom(
  netns: string,
  server: string,
  port: number,
  name: string,
  transport: "udp" | "tcp",
): Promise<DnsResult> {
  const args = [
    "netns",
    "exec",
    netns,
    "node",
    "-e",
    DNS_CLIENT_JS,
    server,
    String(port),
    name,
    transport,
    "1500",
  ];
  const { stdout } = await promisify(execFile)("ip", args, { encoding: "utf8" });
  return JSON.parse(stdout) as DnsResult;
}

describe.skipIf(!IS_ROOT)("netns network (root, real)", () => {
  let manager: NetnsNetworkManager;
  let dnsUpstream: TestResponder;
  let dns: DnsForwarder;
  const ipForwardBefore = IS_ROOT ? sh("sysctl", ["-n", "net.ipv4.ip_forward"]).trim() : "";

  beforeAll(async () => {
    // Remains of an interrupted earlier run of this file.
    tryRun("ip", ["link", "del", WORLD_HOST_LINK]);
    tryRun("ip", ["netns", "del", WORLD_NS]);
    sh(
      "ip",
      ["-batch", "-"],
      [
        `netns add ${WORLD_NS}`,
        `link add ${WORLD_HOST_LINK} type veth peer name ${WORLD_LINK} netns ${WORLD_NS}`,
        `addr add ${WORLD_HOST_IP}/30 dev ${WORLD_HOST_LINK}`,
        `link set ${WORLD_HOST_LINK} up`,
        "",
      ].join("\n"),
    );
    sh(
      "ip",
      ["-n", WORLD_NS, "-batch", "-"],
      [
        "link set lo up",
        `addr add ${WORLD_IP}/30 dev ${WORLD_LINK}`,
        `link set ${WORLD_LINK} up`,
        // Only for the "outside cannot reach in" test: the world pretends to route 10.11/16 via us.
        `route add 10.11.0.0/16 via ${WORLD_HOST_IP}`,
        "",
      ].join("\n"),
    );
    // The host's resolver: a responder on the host's loopback (the forwarder's upstream).
    dnsUpstream = await startResponder({ records: { "probe.wrenn.test": ["10.1.2.3"] } });
    dns = new DnsForwarder({
      upstreams: await HostUpstreams.create({
        kind: "fixed",
        upstreams: [{ host: dnsUpstream.host, port: dnsUpstream.port, family: 4 }],
      }),
      port: DNS_PORT,
      upstreamTimeoutMs: 1000,
      maxInflightPerSandbox: 16,
      logger: createSilentLogger(),
    });
    manager = new NetnsNetworkManager(createSilentLogger(), {
      namePrefix: PREFIX,
      uplinkInterface: WORLD_HOST_LINK,
      dns,
    });
    const state = await manager.ensureHostRules();
    expect(state.uplink).toBe(WORLD_HOST_LINK);
  });

  afterAll(async () => {
    if (manager) {
      await manager.sweep(new Set());
      await manager.teardownHostRules();
    }
    // Every slot's DNS listener went with its network.
    expect(dns?.slots()).toEqual([]);
    await dns?.close();
    await dnsUpstream?.close();
    // Deleting a namespace destroys the veth end inside it asynchronously, so the host end
    // could still be listed right after; deleting the host end removes both ends at once.
    tryRun("ip", ["link", "del", WORLD_HOST_LINK]);
    tryRun("ip", ["netns", "del", WORLD_NS]);
    expect(leftovers()).toEqual(NOTHING);
    expect(sh("ip", ["-o", "link", "show"])).not.toContain(WORLD_HOST_LINK);
    // ip_forward is back to what it was unless another chain set (a live agent) needs it.
    if (!/^-A FORWARD -j \S+-FWD$/m.test(sh("iptables-save", ["-t", "filter"]))) {
      expect(sh("sysctl", ["-n", "net.ipv4.ip_forward"]).trim()).toBe(ipForwardBefore);
    }
  });

  it("ensureHostRules is idempotent and installs the chain set once", async () => {
    await manager.ensureHostRules();
    await manager.ensureHostRules();
    const saved = sh("iptables-save", []);
    expect(saved.match(/^-A FORWARD -j WRTST-FWD$/gm)).toHaveLength(1);
    expect(saved.match(/^-A INPUT -j WRTST-INPUT$/gm)).toHaveLength(1);
    expect(saved.match(/^-A POSTROUTING -j WRTST-POSTROUTING$/gm)).toHaveLength(1);
    expect(saved).toContain(`-A WRTST-POSTROUTING -s 10.12.0.0/16 -o ${WORLD_HOST_LINK} -j MASQUERADE`);
    expect(sh("sysctl", ["-n", "net.ipv4.ip_forward"]).trim()).toBe("1");
  });

  describe("two sandboxes", () => {
    let n1: SandboxNetwork;
    let n2: SandboxNetwork;
    const guests: TestGuest[] = [];
    const servers: Array<{ stop(): Promise<void> }> = [];
    const timings: Record<string, number> = {};

    beforeAll(async () => {
      let t = performance.now();
      n1 = await manager.create(S1);
      timings.create1 = performance.now() - t;
      t = performance.now();
      n2 = await manager.create(S2);
      timings.create2 = performance.now() - t;
      for (const n of [n1, n2]) {
        const guest = await startTestGuest(n.netnsName, `${PREFIX}-guest-${n.slot}`, n.mtu);
        guests.push(guest);
        servers.push(await startServer(guest.netns, "0.0.0.0", 8080, `guest-${n.slot}`));
        servers.push(await startServer(guest.netns, "0.0.0.0", ENVD_PORT, `envd-${n.slot}`));
      }
      servers.push(await startServer(WORLD_NS, WORLD_IP, 9090, "world"));
    }, 60_000);

    afterAll(async () => {
      for (const s of servers) await s.stop();
      for (const g of guests) await g.stop();
      let t = performance.now();
      await manager.destroy(S1);
      timings.destroy1 = performance.now() - t;
      t = performance.now();
      await manager.destroy(S2);
      timings.destroy2 = performance.now() - t;
      console.log(
        "network timings (ms)",
        Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])),
      );
      expect(leftovers(S1)).toEqual(NOTHING);
      expect(leftovers(S2)).toEqual(NOTHING);
      expect(sh("ip", ["netns", "list"])).not.toContain(`${PREFIX}-guest-`);
    }, 60_000);

    it("creates the namespace, veth /31, TAP, host route and rules of the slot plan", () => {
      expect(n1).toMatchObject({
        slot: S1,
        netnsName: `${PREFIX}-ns-${S1}`,
        vethHostName: `${PREFIX}-vh-${S1}`,
        tapName: TAP_NAME,
        guestMac: GUEST_MAC,
        // 10.12.0.0 + 2N / +2N+1; 10.11.0.0 + N
        vethHostIp: "10.12.250.2",
        vethNsIp: "10.12.250.3",
        hostReachableIp: "10.11.125.1",
      });
      expect(n2.hostReachableIp).toBe("10.11.125.2");
      expect(n1.mtu).toBeGreaterThanOrEqual(576);
      expect(n1.mtu).toBeLessThanOrEqual(1500);

      const nsLinks = JSON.parse(sh("ip", ["-n", n1.netnsName, "-j", "link", "show"])) as Array<{
        ifname: string;
        address: string;
        mtu: number;
      }>;
      const tap = nsLinks.find((l) => l.ifname === TAP_NAME);
      expect(tap?.address).toBe(TAP_MAC);
      expect(tap?.mtu).toBe(n1.mtu);
      expect(nsLinks.map((l) => l.ifname).sort()).toEqual([`${PREFIX}-vn-${S1}`, "lo", TAP_NAME].sort());
      const tapDetails = sh("ip", ["-n", n1.netnsName, "-d", "link", "show", TAP_NAME]);
      expect(tapDetails).toContain("tun type tap");
      expect(sh("ip", ["-n", n1.netnsName, "-4", "addr", "show", TAP_NAME])).toContain("169.254.0.22/30");
      expect(sh("ip", ["-n", n1.netnsName, "-4", "addr", "show", `${PREFIX}-vn-${S1}`])).toContain(
        "10.12.250.3/31",
      );
      expect(sh("ip", ["-n", n1.netnsName, "route"])).toContain("default via 10.12.250.2");
      // No IPv6 in the namespace.
      expect(sh("ip", ["-n", n1.netnsName, "-6", "addr"]).trim()).toBe("");
      expect(sh("ip", ["-4", "addr", "show", n1.vethHostName])).toContain("10.12.250.2/31");
      expect(sh("ip", ["route", "show", "10.11.125.1"])).toContain(`via 10.12.250.3 dev ${n1.vethHostName}`);

      const hostRules = leftovers(S1).rules;
      expect(hostRules).toEqual([
        `-A WRTST-SLOTS -s 10.11.125.1/32 -i ${n1.vethHostName} -m comment --comment ${PREFIX}-slot-${S1} -j RETURN`,
        `-A WRTST-SLOTS ! -s 10.12.250.3/32 -i ${n1.vethHostName} -m comment --comment ${PREFIX}-slot-${S1} -j DROP`,
        `-A WRTST-SLOTS -s 10.12.250.3/32 -d 10.12.250.2/32 -i ${n1.vethHostName} -p udp -m udp --dport ${DNS_PORT} -m comment --comment ${PREFIX}-slot-${S1} -j ACCEPT`,
        `-A WRTST-SLOTS -s 10.12.250.3/32 -d 10.12.250.2/32 -i ${n1.vethHostName} -p tcp -m tcp --dport ${DNS_PORT} -m comment --comment ${PREFIX}-slot-${S1} -j ACCEPT`,
      ]);
      expect(dns.addressOf(S1)).toEqual({ address: n1.vethHostIp, port: DNS_PORT });
      const nsRules = sh("ip", ["netns", "exec", n1.netnsName, "iptables-save"]);
      expect(nsRules).toContain(`-A PREROUTING -d 10.11.125.1/32 -i ${PREFIX}-vn-${S1}`);
      expect(nsRules).toContain("-j DNAT --to-destination 169.254.0.21");
      expect(nsRules).toContain("-j SNAT --to-source 10.12.250.3");
      expect(nsRules).toContain(":FORWARD DROP");
    });

    it("the host reaches each slot's guest at its host-reachable address, on every port", async () => {
      const [a, b, c] = await Promise.all([
        connectFrom(undefined, n1.hostReachableIp, 8080),
        connectFrom(undefined, n2.hostReachableIp, 8080),
        connectFrom(undefined, n1.hostReachableIp, ENVD_PORT),
      ]);
      // The guest sees the host's end of its veth as the peer (no SNAT on the way in).
      expect(a).toEqual({ ok: true, data: `guest-${S1} ${n1.vethHostIp}` });
      expect(b).toEqual({ ok: true, data: `guest-${S2} ${n2.vethHostIp}` });
      expect(c).toEqual({ ok: true, data: `envd-${S1} ${n1.vethHostIp}` });
    });

    it("a guest reaches the outside world, masqueraded to the host's uplink address", async () => {
      const r = await connectFrom(guests[0]?.netns, WORLD_IP, 9090);
      expect(r).toEqual({ ok: true, data: `world ${WORLD_HOST_IP}` });
    });

    it("isolates sandboxes from each other, from the host, and from the outside", async () => {
      const g1 = guests[0]?.netns as string;
      const mainIp = hostMainIp();
      // Listeners on the host's own addresses (main IP and both veth gateways), ephemeral ports.
      const hostPorts = new Map<string, number>();
      const { createServer } = await import("node:net");
      const listeners: Array<import("node:net").Server> = [];
      for (const ip of [mainIp, n1.vethHostIp, n2.vethHostIp]) {
        const server = createServer((s) => s.end("host\n"));
        await new Promise<void>((resolve) => server.listen(0, ip, resolve));
        listeners.push(server);
        hostPorts.set(ip, (server.address() as import("node:net").AddressInfo).port);
      }
      const nsServer = await startServer(n1.netnsName, "0.0.0.0", 7070, "sandbox-ns");
      try {
        sh("ip", ["-n", g1, "addr", "add", "10.99.0.1/32", "dev", "gtap0"]);
        const port = (ip: string) => hostPorts.get(ip) as number;
        const checks = {
          // Control: the listeners work from the host itself.
          hostToOwnMainIp: connectFrom(undefined, mainIp, port(mainIp)),
          toOtherGuestViaHostReach: connectFrom(g1, n2.hostReachableIp, 8080),
          toOtherNamespaceVeth: connectFrom(g1, n2.vethNsIp, 8080),
          toOtherVethGateway: connectFrom(g1, n2.vethHostIp, port(n2.vethHostIp)),
          toOwnVethGateway: connectFrom(g1, n1.vethHostIp, port(n1.vethHostIp)),
          toHostMainIp: connectFrom(g1, mainIp, port(mainIp)),
          toOwnHostReach: connectFrom(g1, n1.hostReachableIp, 8080),
          toOwnNamespace: connectFrom(g1, "169.254.0.22", 7070),
          spoofedSource: connectFrom(g1, WORLD_IP, 9090, { localAddress: "10.99.0.1" }),
          worldIntoSandbox: connectFrom(WORLD_NS, n1.hostReachableIp, 8080),
        };
        const results = Object.fromEntries(
          await Promise.all(Object.entries(checks).map(async ([k, p]) => [k, await p] as const)),
        );
        // Wrenn's own ranges (10.11/16, 10.12/16) are in ALWAYS_BLOCKED_CIDRS: the namespace's
        // egress chain rejects them at once (a reset) before the host's rules would drop them.
        const rejected = { ok: false, error: "ECONNREFUSED" };
        expect(results).toEqual({
          hostToOwnMainIp: { ok: true, data: "host" },
          toOtherGuestViaHostReach: rejected,
          toOtherNamespaceVeth: rejected,
          toOtherVethGateway: rejected,
          toOwnVethGateway: rejected,
          toHostMainIp: { ok: false, error: "timeout" },
          toOwnHostReach: rejected,
          toOwnNamespace: { ok: false, error: "timeout" },
          spoofedSource: { ok: false, error: "timeout" },
          worldIntoSandbox: { ok: false, error: "timeout" },
        });
        // And the allowed paths still work afterwards.
        expect(await connectFrom(g1, WORLD_IP, 9090)).toEqual({ ok: true, data: `world ${WORLD_HOST_IP}` });
        expect(await connectFrom(undefined, n1.hostReachableIp, 8080)).toMatchObject({ ok: true });
      } finally {
        await nsServer.stop();
        for (const l of listeners) await new Promise((resolve) => l.close(resolve));
      }
    }, 30_000);

    it("a guest resolves through its gateway (UDP and TCP) by the host's resolver; no other sandbox's forwarder", async () => {
      const [g1, g2] = [guests[0]?.netns as string, guests[1]?.netns as string];
      const probe = (netns: string, server: string, port: number, transport: "udp" | "tcp") =>
        dnsFrom(netns, server, port, "probe.wrenn.test", transport);
      const checks = {
        g1Udp: probe(g1, "169.254.0.22", 53, "udp"),
        g1Tcp: probe(g1, "169.254.0.22", 53, "tcp"),
        g2Udp: probe(g2, "169.254.0.22", 53, "udp"),
        g2Tcp: probe(g2, "169.254.0.22", 53, "tcp"),
        // Another sandbox's forwarder is out of reach and the gateway on other ports; DNS to
        // any address on 53 (its own veth address too) is answered by its own forwarder.
        otherForwarderUdp: probe(g1, n2.vethHostIp, DNS_PORT, "udp"),
        otherForwarderTcp: probe(g1, n2.vethHostIp, DNS_PORT, "tcp"),
        ownVethOn53: probe(g1, n1.vethHostIp, 53, "tcp"),
        gatewayOtherPort: probe(g1, "169.254.0.22", 5353, "tcp"),
      };
      const results = Object.fromEntries(
        await Promise.all(Object.entries(checks).map(async ([k, p]) => [k, await p] as const)),
      );
      const answer = { ok: true, rcode: 0, addresses: ["10.1.2.3"] };
      const blocked = { ok: false, error: "timeout" };
      expect(results).toEqual({
        g1Udp: answer,
        g1Tcp: answer,
        g2Udp: answer,
        g2Tcp: answer,
        otherForwarderUdp: blocked,
        otherForwarderTcp: { ok: false, error: "ECONNREFUSED" },
        ownVethOn53: answer,
        gatewayOtherPort: blocked,
      });
      expect(dnsUpstream.asked.filter((q) => q.name === "probe.wrenn.test").length).toBe(5);
    }, 30_000);

    it("create of a slot that exists fails with conflict and leaves the live slot intact", async () => {
      const err = await manager.create(S1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlotAddressesTakenError);
      expect((err as WrennError).code).toBe("conflict");
      expect((err as WrennError).message).toContain(`on ${PREFIX}-vh-${S1}`);
      expect(leftovers(S1).namespaces).toHaveLength(1);
      expect(await connectFrom(undefined, n1.hostReachableIp, 8080)).toMatchObject({ ok: true });
    });
  });

  describe("failures and cleanup", () => {
    const cleanups: Array<() => void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) c();
      await manager.destroy(S3);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("a conflicting link makes create fail early; nothing of the slot is left, the link is not ours to delete", async () => {
      const a = manager.addresses(S3);
      sh("ip", ["tuntap", "add", "dev", a.vethHostName, "mode", "tap"]);
      cleanups.push(() => tryRun("ip", ["link", "del", a.vethHostName]));
      const err = await manager.create(S3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WrennError);
      expect((err as WrennError).code).toBe("conflict");
      expect((err as WrennError).message).toMatch(new RegExp(`link add ${a.vethHostName}.*File exists`));
      const left = leftovers(S3);
      expect(left.namespaces).toEqual([]);
      expect(left.rules).toEqual([]);
      expect(left.links).toHaveLength(1); // the pre-existing dummy
      expect(left.links[0]).toContain(a.vethHostName);
    });

    it("a route to the slot's guest address makes create fail before anything is made", async () => {
      const a = manager.addresses(S3);
      sh("ip", ["route", "add", "blackhole", `${a.hostReachableIp}/32`]);
      cleanups.push(() => tryRun("ip", ["route", "del", "blackhole", `${a.hostReachableIp}/32`]));
      const err = await manager.create(S3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlotAddressesTakenError);
      expect((err as WrennError).code).toBe("conflict");
      expect((err as SlotAddressesTakenError).holders).toEqual([`route ${a.hostReachableIp} via ?`]);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("another agent's link holding the slot's veth address makes create fail, naming it; that link is left alone", async () => {
      const a = manager.addresses(S3);
      const foreign = `${PREFIX}-fx`;
      sh("ip", ["tuntap", "add", "dev", foreign, "mode", "tap"]);
      cleanups.push(() => tryRun("ip", ["link", "del", foreign]));
      sh("ip", ["addr", "add", `${a.vethHostIp}/31`, "dev", foreign]);
      const err = await manager.create(S3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlotAddressesTakenError);
      expect((err as WrennError).message).toContain(`address ${a.vethHostIp}/31 on ${foreign}`);
      expect(leftovers(S3)).toEqual(NOTHING);
      expect(sh("ip", ["-o", "addr", "show", "dev", foreign])).toContain(a.vethHostIp);
    });

    it("a DNS port another server holds on every address makes create fail, naming it; nothing of the slot is left", async () => {
      const { createSocket } = await import("node:dgram");
      const squatter = createSocket("udp4");
      await new Promise<void>((resolve) => squatter.bind(DNS_PORT + 1, "0.0.0.0", resolve));
      const blockedDns = new DnsForwarder({
        upstreams: await HostUpstreams.create({
          kind: "fixed",
          upstreams: [{ host: dnsUpstream.host, port: dnsUpstream.port, family: 4 }],
        }),
        port: DNS_PORT + 1,
        upstreamTimeoutMs: 1000,
        maxInflightPerSandbox: 16,
        logger: createSilentLogger(),
      });
      const other = new NetnsNetworkManager(createSilentLogger(), {
        namePrefix: PREFIX,
        uplinkInterface: WORLD_HOST_LINK,
        dns: blockedDns,
      });
      try {
        const err = await other.create(S3).catch((e: unknown) => e);
        expect(err).toMatchObject({
          code: "unavailable",
          message: expect.stringContaining("WRENN_DNS_PORT"),
        });
        expect(leftovers(S3)).toEqual(NOTHING);
        expect(blockedDns.slots()).toEqual([]);
      } finally {
        await new Promise<void>((resolve) => squatter.close(() => resolve()));
        await blockedDns.close();
      }
    });

    it("after a failed create the slot is usable again", async () => {
      const n = await manager.create(S3);
      expect(leftovers(S3).namespaces).toEqual([n.netnsName]);
      await manager.destroy(S3);
    });

    it("destroy is idempotent and succeeds when nothing is left", async () => {
      await manager.destroy(S3);
      await manager.destroy(S3);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("rejects slots outside 1..32767", async () => {
      await expect(manager.create(0)).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(manager.destroy(40_000)).rejects.toMatchObject({ code: "invalid_argument" });
    });

    it("creates and destroys several slots concurrently", async () => {
      const slots = [S3, S3 + 1, S3 + 2, S3 + 3];
      cleanups.push(() => {
        for (const s of slots.slice(1))
          for (const c of [`${PREFIX}-vh-${s}`]) tryRun("ip", ["link", "del", c]);
      });
      const started = performance.now();
      const nets = await Promise.all(slots.map((s) => manager.create(s)));
      const createMs = performance.now() - started;
      expect(new Set(nets.map((n) => n.hostReachableIp)).size).toBe(4);
      for (const s of slots) expect(leftovers(s).namespaces).toEqual([`${PREFIX}-ns-${s}`]);
      for (const s of slots) expect(leftovers(s).rules).toHaveLength(4);
      expect(dns.slots().sort()).toEqual(slots);
      const t = performance.now();
      await Promise.all(slots.map((s) => manager.destroy(s)));
      console.log(
        "4 concurrent creates (ms)",
        Math.round(createMs),
        "destroys",
        Math.round(performance.now() - t),
      );
      for (const s of slots) expect(leftovers(s)).toEqual(NOTHING);
    });

    it("sweep removes leftovers (namespaces, links, tagged rules) of slots not kept", async () => {
      const keep = await manager.create(S3);
      const gone = await manager.create(S3 + 1);
      // A half-made slot: a stray host link and a stray tagged rule with no namespace.
      sh("ip", ["tuntap", "add", "dev", `${PREFIX}-vh-${S3 + 2}`, "mode", "tap"]);
      sh("iptables", [
        "-A",
        "WRTST-SLOTS",
        "-i",
        `${PREFIX}-vh-${S3 + 3}`,
        "-m",
        "comment",
        "--comment",
        `${PREFIX}-slot-${S3 + 3}`,
        "-j",
        "DROP",
      ]);
      const removed = await manager.sweep(new Set([S3]));
      expect(removed).toEqual([S3 + 1, S3 + 2, S3 + 3]);
      expect(leftovers(S3).namespaces).toEqual([keep.netnsName]);
      for (const s of [S3 + 1, S3 + 2, S3 + 3]) expect(leftovers(s)).toEqual(NOTHING);
      expect(gone.slot).toBe(S3 + 1);
      expect(await manager.sweep(new Set([S3]))).toEqual([]);
    });
  });
});

describe.skipIf(!IS_ROOT)("netns network with the production names", () => {
  it("detects the default route's interface as uplink and names slots wrenn-*", async () => {
    const hadChains = /^-A FORWARD -j WRENN-FWD$/m.test(sh("iptables-save", ["-t", "filter"]));
    const manager = new NetnsNetworkManager(createSilentLogger());
    const state = await manager.ensureHostRules();
    const dev = (JSON.parse(sh("ip", ["-j", "-4", "route", "show", "default"])) as Array<{ dev?: string }>)[0]
      ?.dev;
    expect(state.uplink).toBe(dev);
    const slot = 32_700; // far above any live agent's slots
    try {
      const n = await manager.create(slot);
      expect(n.netnsName).toBe(`wrenn-ns-${slot}`);
      expect(sh("iptables-save", [])).toContain(`--comment wrenn-slot-${slot} -j DROP`);
    } finally {
      await manager.destroy(slot);
      // A live agent's chain set stays; one this test made goes.
      if (!hadChains) await manager.teardownHostRules();
    }
    expect(sh("ip", ["netns", "list"])).not.toContain(`wrenn-ns-${slot}`);
    expect(sh("ip", ["-o", "link", "show"])).not.toContain(`-${slot}`);
    expect(sh("iptables-save", [])).not.toContain(`wrenn-slot-${slot}`);
    if (!hadChains) expect(sh("iptables-save", [])).not.toContain("WRENN");
  });
});
