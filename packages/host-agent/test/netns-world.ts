import { execFile, execFileSync, spawnSync } from "node:child_process";
import { promisify } from "node:util";
import { createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, expect } from "vitest";
import { DnsForwarder } from "../src/dns/dns-forwarder.js";
import { HostUpstreams } from "../src/dns/upstreams.js";
import { NetnsNetworkManager } from "../src/network/netns-network.js";
import { startResponder, type TestResponder } from "./dns-test-server.js";
import { sh } from "./network-test-guest.js";

/**
 * The netns network tests' world: real namespaces, links and iptables rules, as root.
 * Everything uses the name prefix "wrtst" (namespaces wrtst-ns-N, chains WRTST-*, tags
 * wrtst-slot-N) and slots >= 32001, so the tests can run beside a live agent (prefix
 * "wrenn", low slots) without touching its networks. An "outside world" namespace stands in
 * for the uplink (the tests never leave the host).
 */

export const PREFIX = "wrtst";
// Namespaces and iptables need root; the guest stand-in's frame relay is a python3 script.
export const IS_ROOT = process.getuid?.() === 0 && spawnSync("python3", ["-c", "pass"]).status === 0;
export const WORLD_NS = `${PREFIX}-world`;
export const WORLD_HOST_LINK = `${PREFIX}-wh`;
export const WORLD_LINK = `${PREFIX}-ww`;
export const WORLD_HOST_IP = "198.51.100.1";
export const WORLD_IP = "198.51.100.2";
/** The forwarder's port on each slot's veth address (guests still ask their gateway on 53). */
export const DNS_PORT = 10053;
export const S1 = 32001;
export const S2 = 32002;
export const S3 = 32003;

export interface Leftovers {
  namespaces: string[];
  links: string[];
  rules: string[];
}

export function leftovers(slot?: number): Leftovers {
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
export function tryRun(file: string, args: string[]): void {
  try {
    execFileSync(file, args, { stdio: "ignore" });
  } catch {
    // already gone
  }
}

export const NOTHING: Leftovers = { namespaces: [], links: [], rules: [] };

export function hostMainIp(): string {
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

export type DnsResult = { ok: true; rcode: number; addresses: string[] } | { ok: false; error: string };

/** Asynchronous: the forwarder answering runs in this process's event loop. */
export async function dnsFrom(
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

/** What `useNetnsWorld` sets up for a file's tests (ready inside its tests). */
export interface NetnsWorld {
  manager: NetnsNetworkManager;
  dnsUpstream: TestResponder;
  dns: DnsForwarder;
}

/**
 * Registers the file's beforeAll/afterAll: the world namespace, a DNS upstream on the host's
 * loopback, the forwarder and a manager with the test prefix; afterwards nothing is left.
 */
export function useNetnsWorld(): NetnsWorld {
  const world = {} as NetnsWorld;
  let manager: NetnsNetworkManager | undefined;
  let dns: DnsForwarder | undefined;
  let dnsUpstream: TestResponder | undefined;
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
    Object.assign(world, { manager, dns, dnsUpstream });
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
  return world;
}
