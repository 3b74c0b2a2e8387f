import { mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger } from "@wrenn/shared";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DnsForwarder } from "../src/dns/dns-forwarder.js";
import { errorAnswer, RCODE_SERVFAIL, takeTcpFrames, tcpFrame } from "../src/dns/dns-message.js";
import { HostUpstreams, parseResolvConf, parseUpstream, type Upstream } from "../src/dns/upstreams.js";
import {
  askTcp,
  askUdp,
  buildQuery,
  parseAnswer,
  startResponder,
  type TestResponder,
} from "./dns-test-server.js";

/**
 * The forwarder against real DNS responders on loopback (UDP and TCP), asked by a real client
 * over real sockets. Each test's forwarder listens on loopback at a port of its own.
 */

const RECORDS = {
  "probe.wrenn.test": ["10.1.2.3"],
  "hold-1.wrenn.test": ["10.9.9.1"],
  // 40 A records: 16 bytes each, more than a 512-byte UDP answer holds.
  "big.wrenn.test": Array.from({ length: 40 }, (_, i) => `10.7.0.${i + 1}`),
};

const up = (r: TestResponder): Upstream => ({ host: r.host, port: r.port, family: 4 });

describe("DNS messages", () => {
  it("SERVFAIL echoes the id, RD and the question", () => {
    const q = buildQuery("probe.wrenn.test", 0x1234);
    const a = parseAnswer(Buffer.from(errorAnswer(q, RCODE_SERVFAIL)));
    expect(a).toMatchObject({
      id: 0x1234,
      rcode: 2,
      truncated: false,
      name: "probe.wrenn.test",
      addresses: [],
    });
    // A query whose question cannot be read gets the header only.
    const short = Buffer.from(errorAnswer(Buffer.from([0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 200]), 2));
    expect(short.length).toBe(12);
    expect(short.readUInt16BE(4)).toBe(0);
  });

  it("splits TCP frames, keeping a partial one for later", () => {
    const a = buildQuery("a.test", 1);
    const b = buildQuery("b.test", 2);
    const stream = Buffer.concat([tcpFrame(a), tcpFrame(b)]);
    const { messages, rest } = takeTcpFrames(stream.subarray(0, stream.length - 3));
    expect(messages.map((m) => Buffer.from(m))).toEqual([a]);
    expect(takeTcpFrames(Buffer.concat([rest, stream.subarray(stream.length - 3)])).messages).toEqual([b]);
  });
});

describe("upstreams", () => {
  it("parses resolv.conf: nameservers in order, loopback stubs and IPv6 kept, junk skipped", () => {
    const text = [
      "# generated",
      "nameserver 127.0.0.53",
      "options edns0 trust-ad",
      "search example.com",
      "nameserver 2001:db8::1",
      "nameserver fe80::1%eth0",
      "nameserver not-an-ip",
      "  nameserver 10.255.255.53",
    ].join("\n");
    expect(parseResolvConf(text)).toEqual([
      { host: "127.0.0.53", port: 53, family: 4 },
      { host: "2001:db8::1", port: 53, family: 6 },
      { host: "fe80::1%eth0", port: 53, family: 6 },
      { host: "10.255.255.53", port: 53, family: 4 },
    ]);
    // No nameserver line: the C library's default.
    expect(parseResolvConf("search x\n")).toEqual([{ host: "127.0.0.1", port: 53, family: 4 }]);
  });

  it("parses configured upstreams and rejects what is not an address", () => {
    expect(parseUpstream("9.9.9.9")).toEqual({ host: "9.9.9.9", port: 53, family: 4 });
    expect(parseUpstream("127.0.0.1:5353")).toEqual({ host: "127.0.0.1", port: 5353, family: 4 });
    expect(parseUpstream("[::1]:5353")).toEqual({ host: "::1", port: 5353, family: 6 });
    expect(parseUpstream("2001:db8::53")).toEqual({ host: "2001:db8::53", port: 53, family: 6 });
    expect(() => parseUpstream("dns.example")).toThrow(/not ip\[:port\]/);
    expect(() => parseUpstream("1.2.3.4:99999")).toThrow();
  });

  it("re-reads the host's resolv.conf when it changes", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wrenn-dns-test-"));
    try {
      const path = join(dir, "resolv.conf");
      writeFileSync(path, "nameserver 10.0.0.1\n");
      const ups = await HostUpstreams.create({ kind: "resolv-conf", path }, 0);
      expect(ups.current().map((u) => u.host)).toEqual(["10.0.0.1"]);
      writeFileSync(path, "nameserver 10.0.0.2\nnameserver 10.0.0.3\n");
      utimesSync(path, new Date(), new Date(Date.now() + 5000));
      // A re-read runs in the background; a later call sees its result.
      const hosts = async () => {
        for (let i = 0; i < 20; i++) {
          ups.current();
          await new Promise((r) => setTimeout(r, 10));
        }
        return ups.current().map((u) => u.host);
      };
      expect(await hosts()).toEqual(["10.0.0.2", "10.0.0.3"]);
      // A vanished file keeps the last good list.
      rmSync(path);
      expect(await hosts()).toEqual(["10.0.0.2", "10.0.0.3"]);
      await expect(HostUpstreams.create({ kind: "resolv-conf", path }, 0)).rejects.toThrow(/cannot read/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("DNS forwarder (real sockets on loopback)", () => {
  let good: TestResponder;
  let stub: TestResponder;
  let silent: TestResponder;
  let failing: TestResponder;
  let forwarder: DnsForwarder | undefined;

  beforeAll(async () => {
    good = await startResponder({ records: RECORDS });
    // The host's systemd-resolved-style stub on another loopback address.
    stub = await startResponder({ host: "127.0.0.53", records: { "stub.wrenn.test": ["10.5.5.5"] } });
    silent = await startResponder({ records: RECORDS, silent: true });
    failing = await startResponder({ records: RECORDS, rcode: 2 });
  });

  afterAll(async () => {
    await Promise.all([good, stub, silent, failing].map((r) => r?.close()));
  });

  afterEach(async () => {
    await forwarder?.close();
    forwarder = undefined;
  });

  async function start(
    upstreams: Upstream[],
    opts: { timeoutMs?: number; maxInflight?: number } = {},
  ): Promise<DnsForwarder> {
    forwarder = new DnsForwarder({
      upstreams: await HostUpstreams.create({ kind: "fixed", upstreams }),
      port: 0,
      upstreamTimeoutMs: opts.timeoutMs ?? 300,
      maxInflightPerSandbox: opts.maxInflight ?? 64,
      logger: createSilentLogger(),
    });
    return forwarder;
  }

  function where(f: DnsForwarder, slot: number): { address: string; port: number } {
    const a = f.addressOf(slot);
    if (!a) throw new Error(`slot ${slot} has no listener`);
    return a;
  }

  it("answers over UDP and TCP from the host's resolver, on the sandbox's address only", async () => {
    const f = await start([up(good)]);
    await f.attach(1, "127.0.0.1");
    const { address, port } = where(f, 1);
    expect(address).toBe("127.0.0.1");
    expect(await askUdp(address, port, "probe.wrenn.test", 7)).toMatchObject({
      id: 7,
      rcode: 0,
      addresses: ["10.1.2.3"],
    });
    expect(await askTcp(address, port, "probe.wrenn.test", 8)).toMatchObject({
      id: 8,
      addresses: ["10.1.2.3"],
    });
    expect(await askUdp(address, port, "nope.wrenn.test", 9)).toMatchObject({ rcode: 3 });
    // Not on another loopback address (no wildcard socket).
    expect(await askTcp("127.0.0.2", port, "probe.wrenn.test", 10)).toBe("ECONNREFUSED");
    expect(good.asked.slice(-3)).toEqual([
      { name: "probe.wrenn.test", transport: "udp" },
      { name: "probe.wrenn.test", transport: "tcp" },
      { name: "nope.wrenn.test", transport: "udp" },
    ]);
  });

  it("reaches a loopback stub resolver (127.0.0.53)", async () => {
    const f = await start([up(stub)]);
    await f.attach(1, "127.0.0.1");
    const { address, port } = where(f, 1);
    expect(await askUdp(address, port, "stub.wrenn.test", 11)).toMatchObject({ addresses: ["10.5.5.5"] });
  });

  it("fails over: an unreachable, then a silent upstream hand over to the next; the one that answered is asked first after", async () => {
    // A port nobody listens on: the kernel answers ICMP port unreachable at once.
    const closed = await startResponder({ records: {} });
    const unreachable = up(closed);
    await closed.close();
    const f = await start([unreachable, up(silent), up(good)], { timeoutMs: 400 });
    await f.attach(1, "127.0.0.1");
    const { address, port } = where(f, 1);
    const silentBefore = silent.asked.length;
    let t = performance.now();
    expect(await askUdp(address, port, "probe.wrenn.test", 21)).toMatchObject({ addresses: ["10.1.2.3"] });
    const first = performance.now() - t;
    expect(first).toBeGreaterThanOrEqual(380);
    expect(first).toBeLessThan(2000);
    expect(silent.asked.length).toBe(silentBefore + 1);
    t = performance.now();
    expect(await askTcp(address, port, "probe.wrenn.test", 22)).toMatchObject({ addresses: ["10.1.2.3"] });
    expect(performance.now() - t).toBeLessThan(300);
    expect(silent.asked.length).toBe(silentBefore + 1);
  });

  it("answers SERVFAIL when no upstream answers (timeouts), and passes on an upstream's own SERVFAIL last", async () => {
    const f = await start([up(silent), up(silent)], { timeoutMs: 250 });
    await f.attach(1, "127.0.0.1");
    const { address, port } = where(f, 1);
    const t = performance.now();
    expect(await askUdp(address, port, "probe.wrenn.test", 31)).toMatchObject({
      id: 31,
      rcode: 2,
      name: "probe.wrenn.test",
      addresses: [],
    });
    expect(performance.now() - t).toBeGreaterThanOrEqual(480);
    expect(await askTcp(address, port, "probe.wrenn.test", 32)).toMatchObject({ id: 32, rcode: 2 });

    await f.close();
    const g = await start([up(failing), up(good)]);
    await g.attach(1, "127.0.0.1");
    const w = where(g, 1);
    // SERVFAIL from the first upstream: the next one is asked.
    expect(await askUdp(w.address, w.port, "probe.wrenn.test", 33)).toMatchObject({
      rcode: 0,
      addresses: ["10.1.2.3"],
    });
  });

  it("passes a truncated UDP answer through; the client's retry over TCP gets all of it", async () => {
    const f = await start([up(good)]);
    await f.attach(1, "127.0.0.1");
    const { address, port } = where(f, 1);
    const udp = await askUdp(address, port, "big.wrenn.test", 41);
    expect(udp).toMatchObject({ id: 41, rcode: 0, truncated: true, addresses: [] });
    const tcp = await askTcp(address, port, "big.wrenn.test", 42);
    expect(tcp).toMatchObject({ id: 42, rcode: 0, truncated: false });
    expect((tcp as { addresses: string[]; bytes: number }).addresses).toHaveLength(40);
    expect((tcp as { bytes: number }).bytes).toBeGreaterThan(512);
    expect(good.asked.filter((q) => q.name === "big.wrenn.test").map((q) => q.transport)).toEqual([
      "udp",
      "tcp",
    ]);
  });

  it("bounds each sandbox's queries in flight: over the bound REFUSED at once, other sandboxes unaffected", async () => {
    const f = await start([up(good)], { timeoutMs: 5000, maxInflight: 4 });
    await f.attach(1, "127.0.0.1");
    await f.attach(2, "127.0.0.2");
    const s1 = where(f, 1);
    const s2 = where(f, 2);
    const held = [1, 2, 3, 4].map((i) =>
      i % 2
        ? askUdp(s1.address, s1.port, "hold-1.wrenn.test", 50 + i)
        : askTcp(s1.address, s1.port, "hold-1.wrenn.test", 50 + i),
    );
    // Wait until all four reached the upstream (they are in flight).
    for (let i = 0; i < 100 && good.asked.filter((q) => q.name.startsWith("hold-")).length < 4; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    const t = performance.now();
    expect(await askUdp(s1.address, s1.port, "probe.wrenn.test", 60)).toMatchObject({ id: 60, rcode: 5 });
    expect(await askTcp(s1.address, s1.port, "probe.wrenn.test", 61)).toMatchObject({ id: 61, rcode: 5 });
    expect(performance.now() - t).toBeLessThan(500);
    // The other sandbox has its own bound.
    expect(await askUdp(s2.address, s2.port, "probe.wrenn.test", 62)).toMatchObject({
      rcode: 0,
      addresses: ["10.1.2.3"],
    });
    good.release();
    const answers = await Promise.all(held);
    expect(answers.map((a) => (a as { addresses: string[] }).addresses)).toEqual(Array(4).fill(["10.9.9.1"]));
    // Room again once they are answered.
    expect(await askUdp(s1.address, s1.port, "probe.wrenn.test", 63)).toMatchObject({ rcode: 0 });
  });

  it("detach closes the sandbox's sockets and abandons its queries in flight", async () => {
    const f = await start([up(silent)], { timeoutMs: 5000 });
    await f.attach(3, "127.0.0.1");
    const { address, port } = where(f, 3);
    const pending = askUdp(address, port, "probe.wrenn.test", 71, 1500);
    await new Promise((r) => setTimeout(r, 100));
    await f.detach(3);
    expect(f.slots()).toEqual([]);
    expect(await pending).toBeUndefined();
    expect(await askTcp(address, port, "probe.wrenn.test", 72)).toBe("ECONNREFUSED");
    await f.detach(3); // idempotent
  });

  it("a fixed port taken by someone else fails attach with a clear error", async () => {
    forwarder = new DnsForwarder({
      upstreams: await HostUpstreams.create({ kind: "fixed", upstreams: [up(good)] }),
      port: good.port,
      upstreamTimeoutMs: 300,
      maxInflightPerSandbox: 4,
      logger: createSilentLogger(),
    });
    await expect(forwarder.attach(1, good.host)).rejects.toMatchObject({
      code: "unavailable",
      message: expect.stringContaining("WRENN_DNS_PORT"),
    });
    expect(forwarder.slots()).toEqual([]);
  });
});
