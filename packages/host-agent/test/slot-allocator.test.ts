import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_SLOT, slotAddresses } from "../src/network/slot-addresses.js";
import { SlotAllocator } from "../src/network/slot-allocator.js";

describe("slot addresses", () => {
  it("follows the plan: 10.12.0.0+2N/31 host, +1 namespace, 10.11.0.0+N host-reachable", () => {
    expect(slotAddresses(1)).toEqual({
      netnsName: "wrenn-ns-1",
      vethHostName: "wrenn-vh-1",
      vethNsName: "wrenn-vn-1",
      vethHostIp: "10.12.0.2",
      vethNsIp: "10.12.0.3",
      hostReachableIp: "10.11.0.1",
    });
    expect(slotAddresses(200)).toMatchObject({
      vethHostIp: "10.12.1.144",
      vethNsIp: "10.12.1.145",
      hostReachableIp: "10.11.0.200",
    });
    expect(slotAddresses(MAX_SLOT)).toMatchObject({
      vethNsIp: "10.12.255.255",
      hostReachableIp: "10.11.127.255",
    });
    expect(slotAddresses(MAX_SLOT).vethHostName.length).toBeLessThanOrEqual(15);
  });

  it("rejects slots outside 1..MAX_SLOT and bad prefixes", () => {
    for (const bad of [0, -1, 1.5, MAX_SLOT + 1, Number.NaN])
      expect(() => slotAddresses(bad)).toThrow(RangeError);
    expect(() => slotAddresses(1, "toolong1")).toThrow(RangeError);
    expect(slotAddresses(3, "wrtst").netnsName).toBe("wrtst-ns-3");
  });
});

describe("SlotAllocator", () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-slots-"));
    path = join(dir, "agent", "slots.json");
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    expect(() => readdirSync(dir)).toThrow();
  });

  it("hands out the lowest free slot and reuses released ones", async () => {
    const slots = await SlotAllocator.create(path, 10);
    expect(await slots.acquire("a")).toBe(1);
    expect(await slots.acquire("b")).toBe(2);
    expect(await slots.acquire("c")).toBe(3);
    await slots.release(2);
    expect(await slots.acquire("d")).toBe(2);
    expect([...slots.leases()]).toEqual([
      [1, "a"],
      [2, "d"],
      [3, "c"],
    ]);
    expect(slots.slotsOf("c")).toEqual([3]);
  });

  it("persists leases atomically and reloads them in a new instance (agent restart)", async () => {
    const first = await SlotAllocator.create(path, 10);
    await first.acquire("sbx-1");
    await first.acquire("sbx-2");
    await first.release(1);
    const onDisk = JSON.parse(readFileSync(path, "utf8")) as { leases: Record<string, string> };
    expect(onDisk.leases).toEqual({ "2": "sbx-2" });
    // Only the lease file: no temporary files left behind.
    expect(readdirSync(join(dir, "agent"))).toEqual(["slots.json"]);

    const second = await SlotAllocator.create(path, 10);
    expect([...second.leases()]).toEqual([[2, "sbx-2"]]);
    expect(await second.acquire("sbx-3")).toBe(1);
    expect(await second.acquire("sbx-4")).toBe(3);
  });

  it("never hands out the same slot to concurrent acquires", async () => {
    const slots = await SlotAllocator.create(path, 64);
    const got = await Promise.all(Array.from({ length: 64 }, (_, i) => slots.acquire(`sbx-${i}`)));
    expect(new Set(got).size).toBe(64);
    expect([...got].sort((x, y) => x - y)).toEqual(Array.from({ length: 64 }, (_, i) => i + 1));
    // Concurrent releases and acquires interleaved stay consistent too.
    // Operations apply in call order: x gets 5, then the second release(5) frees it again.
    const [, , x] = await Promise.all([
      slots.release(5),
      slots.release(9),
      slots.acquire("x"),
      slots.release(5),
    ]);
    expect(x).toBe(5);
    expect(slots.leases().size).toBe(62);
    const reloaded = await SlotAllocator.create(path, 64);
    expect([...reloaded.leases()]).toEqual([...slots.leases()].sort(([x], [y]) => x - y));
  });

  it("fails with no_capacity when every slot is leased", async () => {
    const slots = await SlotAllocator.create(path, 2);
    await slots.acquire("a");
    await slots.acquire("b");
    await expect(slots.acquire("c")).rejects.toMatchObject({ code: "no_capacity" });
    await slots.release(1);
    expect(await slots.acquire("c")).toBe(1);
  });

  it("skips a slot set aside until its time is up, and says so when that leaves none", async () => {
    const slots = await SlotAllocator.create(path, 2, 40);
    expect(await slots.acquire("a")).toBe(40);
    await slots.setAside(40, 200);
    expect([...slots.leases()]).toEqual([]);
    expect(await slots.acquire("b")).toBe(41);
    await expect(slots.acquire("c")).rejects.toMatchObject({
      code: "no_capacity",
      message: "all 2 network slots are in use (1 of them held by something else on this host)",
    });
    await new Promise((r) => setTimeout(r, 250));
    expect(await slots.acquire("c")).toBe(40);
    // Setting aside is not persisted: a restarted agent looks at the host afresh.
    await slots.setAside(41, 60_000);
    const reloaded = await SlotAllocator.create(path, 2, 40);
    expect(await reloaded.acquire("d")).toBe(41);
  });

  it("release is idempotent", async () => {
    const slots = await SlotAllocator.create(path, 2);
    await slots.release(1);
    const s = await slots.acquire("a");
    await slots.release(s);
    await slots.release(s);
    expect(slots.leases().size).toBe(0);
  });

  it("keeps leases above a lowered maxSlots but hands out none there", async () => {
    const wide = await SlotAllocator.create(path, 5);
    for (const o of ["a", "b", "c", "d", "e"]) await wide.acquire(o);
    await wide.release(1);
    const narrow = await SlotAllocator.create(path, 2);
    expect(narrow.leases().size).toBe(4);
    expect(await narrow.acquire("f")).toBe(1);
    await expect(narrow.acquire("g")).rejects.toMatchObject({ code: "no_capacity" });
  });

  it("rejects a corrupt lease file and bad arguments with typed errors", async () => {
    await SlotAllocator.create(path, 2).then((s) => s.acquire("a"));
    writeFileSync(path, "{not json");
    await expect(SlotAllocator.create(path, 2)).rejects.toMatchObject({ code: "internal" });
    writeFileSync(path, JSON.stringify({ leases: { "0": "x" } }));
    await expect(SlotAllocator.create(path, 2)).rejects.toMatchObject({ code: "internal" });
    await expect(SlotAllocator.create(path, 0)).rejects.toMatchObject({ code: "invalid_argument" });
    writeFileSync(path, JSON.stringify({ leases: {} }));
    await expect((await SlotAllocator.create(path, 2)).acquire("")).rejects.toMatchObject({
      code: "invalid_argument",
    });
  });
});
