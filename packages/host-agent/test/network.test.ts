import type { WrennError } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ENVD_PORT,
  GUEST_MAC,
  type SandboxNetwork,
  SlotAddressesTakenError,
  TAP_MAC,
  TAP_NAME,
} from "../src/network/sandbox-network.js";
import {
  DNS_PORT,
  dnsFrom,
  hostMainIp,
  IS_ROOT,
  leftovers,
  NOTHING,
  PREFIX,
  S1,
  S2,
  useNetnsWorld,
  WORLD_HOST_IP,
  WORLD_HOST_LINK,
  WORLD_IP,
  WORLD_NS,
} from "./netns-world.js";
import { connectFrom, sh, startServer, startTestGuest, type TestGuest } from "./network-test-guest.js";

/** Two sandboxes' networks in the netns world (netns-world.ts): reach, isolation, DNS, NAT. */
describe.skipIf(!IS_ROOT)("netns network (root, real)", () => {
  const world = useNetnsWorld();

  it("ensureHostRules is idempotent and installs the chain set once", async () => {
    await world.manager.ensureHostRules();
    await world.manager.ensureHostRules();
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
      n1 = await world.manager.create(S1);
      timings.create1 = performance.now() - t;
      t = performance.now();
      n2 = await world.manager.create(S2);
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
      await world.manager.destroy(S1);
      timings.destroy1 = performance.now() - t;
      t = performance.now();
      await world.manager.destroy(S2);
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
      expect(world.dns.addressOf(S1)).toEqual({ address: n1.vethHostIp, port: DNS_PORT });
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
      expect(world.dnsUpstream.asked.filter((q) => q.name === "probe.wrenn.test").length).toBe(5);
    }, 30_000);

    it("create of a slot that exists fails with conflict and leaves the live slot intact", async () => {
      const err = await world.manager.create(S1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlotAddressesTakenError);
      expect((err as WrennError).code).toBe("conflict");
      expect((err as WrennError).message).toContain(`on ${PREFIX}-vh-${S1}`);
      expect(leftovers(S1).namespaces).toHaveLength(1);
      expect(await connectFrom(undefined, n1.hostReachableIp, 8080)).toMatchObject({ ok: true });
    });
  });
});
