import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterEach, describe, expect, it } from "vitest";
import { DnsForwarder } from "../src/dns/dns-forwarder.js";
import { HostUpstreams } from "../src/dns/upstreams.js";
import { NetnsNetworkManager } from "../src/network/netns-network.js";
import { SlotAddressesTakenError } from "../src/network/sandbox-network.js";
import {
  DNS_PORT,
  IS_ROOT,
  leftovers,
  NOTHING,
  PREFIX,
  S3,
  tryRun,
  useNetnsWorld,
  WORLD_HOST_LINK,
} from "./netns-world.js";
import { sh } from "./network-test-guest.js";

/** What a sandbox network's create and destroy leave when they fail, in the netns world. */
describe.skipIf(!IS_ROOT)("netns network: failures and cleanup (root, real)", () => {
  const world = useNetnsWorld();

  describe("failures and cleanup", () => {
    const cleanups: Array<() => void> = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) c();
      await world.manager.destroy(S3);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("a conflicting link makes create fail early; nothing of the slot is left, the link is not ours to delete", async () => {
      const a = world.manager.addresses(S3);
      sh("ip", ["tuntap", "add", "dev", a.vethHostName, "mode", "tap"]);
      cleanups.push(() => tryRun("ip", ["link", "del", a.vethHostName]));
      const err = await world.manager.create(S3).catch((e: unknown) => e);
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
      const a = world.manager.addresses(S3);
      sh("ip", ["route", "add", "blackhole", `${a.hostReachableIp}/32`]);
      cleanups.push(() => tryRun("ip", ["route", "del", "blackhole", `${a.hostReachableIp}/32`]));
      const err = await world.manager.create(S3).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SlotAddressesTakenError);
      expect((err as WrennError).code).toBe("conflict");
      expect((err as SlotAddressesTakenError).holders).toEqual([`route ${a.hostReachableIp} via ?`]);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("another agent's link holding the slot's veth address makes create fail, naming it; that link is left alone", async () => {
      const a = world.manager.addresses(S3);
      const foreign = `${PREFIX}-fx`;
      sh("ip", ["tuntap", "add", "dev", foreign, "mode", "tap"]);
      cleanups.push(() => tryRun("ip", ["link", "del", foreign]));
      sh("ip", ["addr", "add", `${a.vethHostIp}/31`, "dev", foreign]);
      const err = await world.manager.create(S3).catch((e: unknown) => e);
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
          upstreams: [{ host: world.dnsUpstream.host, port: world.dnsUpstream.port, family: 4 }],
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
      const n = await world.manager.create(S3);
      expect(leftovers(S3).namespaces).toEqual([n.netnsName]);
      await world.manager.destroy(S3);
    });

    it("destroy is idempotent and succeeds when nothing is left", async () => {
      await world.manager.destroy(S3);
      await world.manager.destroy(S3);
      expect(leftovers(S3)).toEqual(NOTHING);
    });

    it("rejects slots outside 1..32767", async () => {
      await expect(world.manager.create(0)).rejects.toMatchObject({ code: "invalid_argument" });
      await expect(world.manager.destroy(40_000)).rejects.toMatchObject({ code: "invalid_argument" });
    });

    it("creates and destroys several slots concurrently", async () => {
      const slots = [S3, S3 + 1, S3 + 2, S3 + 3];
      cleanups.push(() => {
        for (const s of slots.slice(1))
          for (const c of [`${PREFIX}-vh-${s}`]) tryRun("ip", ["link", "del", c]);
      });
      const started = performance.now();
      const nets = await Promise.all(slots.map((s) => world.manager.create(s)));
      const createMs = performance.now() - started;
      expect(new Set(nets.map((n) => n.hostReachableIp)).size).toBe(4);
      for (const s of slots) expect(leftovers(s).namespaces).toEqual([`${PREFIX}-ns-${s}`]);
      for (const s of slots) expect(leftovers(s).rules).toHaveLength(4);
      expect(world.dns.slots().sort()).toEqual(slots);
      const t = performance.now();
      await Promise.all(slots.map((s) => world.manager.destroy(s)));
      console.log(
        "4 concurrent creates (ms)",
        Math.round(createMs),
        "destroys",
        Math.round(performance.now() - t),
      );
      for (const s of slots) expect(leftovers(s)).toEqual(NOTHING);
    });

    it("sweep removes leftovers (namespaces, links, tagged rules) of slots not kept", async () => {
      const keep = await world.manager.create(S3);
      const gone = await world.manager.create(S3 + 1);
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
      const removed = await world.manager.sweep(new Set([S3]));
      expect(removed).toEqual([S3 + 1, S3 + 2, S3 + 3]);
      expect(leftovers(S3).namespaces).toEqual([keep.netnsName]);
      for (const s of [S3 + 1, S3 + 2, S3 + 3]) expect(leftovers(s)).toEqual(NOTHING);
      expect(gone.slot).toBe(S3 + 1);
      expect(await world.manager.sweep(new Set([S3]))).toEqual([]);
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
