import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountPoints } from "../src/drivers-system/volume-disk.js";
import { NetnsNetworkManager } from "../src/network/netns-network.js";
import { GUEST_GATEWAY_IP } from "../src/network/sandbox-network.js";
import { GaneshaSupervisor } from "../src/volumes/ganesha-supervisor.js";
import { VolumeService } from "../src/volumes/volume-service.js";
import { VolumeStore } from "../src/volumes/volume-store.js";
import { sh, startTestGuest, type TestGuest } from "./network-test-guest.js";

/**
 * The volume server on the host with real namespaces, loop mounts and nfs-ganesha, as root:
 * guest stand-ins (network-test-guest.ts) reach it through their gateway exactly as a VM
 * would, with libnfs's userspace client (the host has no kernel NFS client). Names use the
 * prefix "wvol" and slots ≥ 32101 so the test runs beside a live agent; the server listens on
 * ports of its own.
 */

const PREFIX = "wvol";
const NFS = { nfsPort: 32049, mountPort: 32048 };
const S1 = 32101;
const S2 = 32102;
const HAVE_TOOLS = ["ganesha.nfsd", "rpcbind", "nfs-ls", "nfs-cat", "nfs-cp", "mkfs.ext4", "python3"].every(
  (bin) => spawnSync("sh", ["-c", `command -v ${bin}`]).status === 0,
);
const CAN_RUN = process.getuid?.() === 0 && HAVE_TOOLS;

function url(volumeId: string, file = ""): string {
  // Guests mount on their gateway's standard ports; the namespace DNATs them to the server.
  return `nfs://${GUEST_GATEWAY_IP}/v/${volumeId}${file}?version=3&nfsport=2049&mountport=20048`;
}

interface Run {
  code: number;
  out: string;
}

function inGuest(netns: string, file: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      "ip",
      ["netns", "exec", netns, "timeout", "20", file, ...args],
      { encoding: "utf8" },
      (err, out, e) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: `${out}${e}` }),
    );
  });
}

function established(address: string): string[] {
  return sh("ss", ["-H", "-t", "-n", "state", "established", "dst", address])
    .split("\n")
    .filter((l) => l.includes(`:${NFS.nfsPort}`) || l.includes(`:${NFS.mountPort}`));
}

describe.skipIf(!CAN_RUN)("volumes served by nfs-ganesha", () => {
  const logger = createSilentLogger();
  let root: string;
  let store: VolumeStore;
  let server: GaneshaSupervisor;
  let volumes: VolumeService;
  const network = new NetnsNetworkManager(logger, { namePrefix: PREFIX, nfs: NFS });
  const guests: TestGuest[] = [];
  let holder: ChildProcess | undefined;
  /** The first supervisor: it started rpcbind (when none ran), which only it stops. */
  let firstServer: GaneshaSupervisor | undefined;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "wvol-"));
    store = await VolumeStore.open(logger, join(root, "volumes"));
    server = new GaneshaSupervisor(logger, { dir: join(root, "nfs") });
    firstServer = server;
    volumes = new VolumeService(logger, store, server, NFS);
    await volumes.start();
    await network.ensureHostRules();
  }, 60_000);

  afterAll(async () => {
    holder?.kill("SIGKILL");
    for (const g of guests) await g.stop().catch(() => {});
    for (const slot of [S1, S2]) await network.destroy(slot).catch(() => {});
    await network.teardownHostRules().catch(() => {});
    await volumes?.stop();
    await firstServer?.stop({ rpcbind: true });
    await store?.unmountAll();
    if (root) await rm(root, { recursive: true, force: true });
    const left = [...(await mountPoints())].filter((m) => root && m.startsWith(root));
    expect(left).toEqual([]);
    expect(server.runningPid).toBeUndefined();
  }, 60_000);

  it("creates volumes with stable export ids and one name per team", async () => {
    const a = await volumes.create({ volumeId: "vola", teamId: "t1", name: "data", sizeMiB: 16 });
    const b = await volumes.create({ volumeId: "volb", teamId: "t1", name: "other", sizeMiB: 16 });
    await volumes.create({ volumeId: "volc", teamId: "t2", name: "data", sizeMiB: 16 });
    expect(a.exportId).not.toBe(b.exportId);
    await expect(
      volumes.create({ volumeId: "vold", teamId: "t1", name: "data", sizeMiB: 16 }),
    ).rejects.toThrow(/already has a volume/);
    expect(volumes.list("t1").map((v) => v.volumeId)).toEqual(["vola", "volb"]);
    expect((await mountPoints()).has(store.mountPath("vola"))).toBe(true);
  }, 60_000);

  it("lets each slot mount only the volumes granted to it", async () => {
    for (const [slot, name] of [
      [S1, "g1"],
      [S2, "g2"],
    ] as const) {
      const net = await network.create(slot);
      guests.push(await startTestGuest(net.netnsName, `${PREFIX}-${name}`, net.mtu));
    }
    const [g1, g2] = guests.map((g) => g.netns) as [string, string];
    await volumes.grant(S1, network.addresses(S1).vethNsIp, ["vola"], "t1");
    await volumes.grant(S2, network.addresses(S2).vethNsIp, ["vola", "volb"], "t1");
    await expect(volumes.grant(S1, network.addresses(S1).vethNsIp, ["volc"], "t1")).rejects.toThrow(
      /not found/,
    );

    // Written on the host (as the content API will) and seen through NFS at once.
    await writeFile(join(volumes.hostPath("vola"), "hello.txt"), "from the host\n");
    expect(await inGuest(g1, "nfs-cat", [url("vola", "/hello.txt")])).toEqual({
      code: 0,
      out: "from the host\n",
    });
    const denied = await inGuest(g1, "nfs-ls", [url("volb")]);
    expect(denied.code).not.toBe(0);
    expect(denied.out).toMatch(/ACCES|denied/i);
    expect((await inGuest(g2, "nfs-ls", [url("volb")])).code).toBe(0);

    // One sandbox writes, the other reads.
    const local = join(root, "from-g2.txt");
    await writeFile(local, "from g2\n");
    expect((await inGuest(g2, "nfs-cp", [local, url("vola", "/from-g2.txt")])).code).toBe(0);
    expect((await inGuest(g1, "nfs-cat", [url("vola", "/from-g2.txt")])).out).toBe("from g2\n");
    expect(await readFile(join(volumes.hostPath("vola"), "from-g2.txt"), "utf8")).toBe("from g2\n");

    await volumes.revoke(S2);
    expect((await inGuest(g2, "nfs-ls", [url("vola")])).code).not.toBe(0);
    expect((await inGuest(g1, "nfs-ls", [url("vola")])).code).toBe(0);
  }, 120_000);

  it("enforces the volume's size", async () => {
    const [g1] = guests.map((g) => g.netns) as [string];
    const big = join(root, "big.bin");
    await writeFile(big, Buffer.alloc(24 * 1024 * 1024, 7));
    const r = await inGuest(g1, "nfs-cp", [big, url("vola", "/big.bin")]);
    expect(r.code).not.toBe(0);
    await rm(join(volumes.hostPath("vola"), "big.bin"), { force: true });
  }, 120_000);

  it("keeps serving across an agent restart (adopts the server, re-applies grants)", async () => {
    const [g1] = guests.map((g) => g.netns) as [string];
    const pid = server.runningPid;
    store = await VolumeStore.open(logger, join(root, "volumes"));
    server = new GaneshaSupervisor(logger, { dir: join(root, "nfs") });
    volumes = new VolumeService(logger, store, server, NFS);
    await volumes.start(new Set([S1]));
    expect(server.runningPid).toBe(pid);
    expect(volumes.granted(S1)).toEqual(["vola"]);
    expect((await inGuest(g1, "nfs-cat", [url("vola", "/hello.txt")])).code).toBe(0);
  }, 60_000);

  it("destroys the server's connections to a released slot", async () => {
    const [g1] = guests.map((g) => g.netns) as [string];
    const address = network.addresses(S1).vethNsIp;
    holder = spawn(
      "ip",
      [
        "netns",
        "exec",
        g1,
        "node",
        "-e",
        `require("node:net").connect(2049, "${GUEST_GATEWAY_IP}"); setInterval(() => {}, 1e6)`,
      ],
      { stdio: "ignore" },
    );
    for (let i = 0; i < 200 && established(address).length === 0; i++)
      await new Promise((r) => setTimeout(r, 25));
    expect(established(address).length).toBe(1);
    await network.destroy(S1);
    expect(established(address)).toEqual([]);
    holder.kill("SIGKILL");
    holder = undefined;
  }, 60_000);

  it("refuses to delete a volume a slot may mount, then deletes it", async () => {
    await expect(volumes.delete("vola")).rejects.toSatisfy(
      (e: unknown) => e instanceof WrennError && e.code === "conflict",
    );
    await volumes.revoke(S1);
    await volumes.delete("vola");
    expect(volumes.get("vola")).toBeUndefined();
    expect((await mountPoints()).has(store.mountPath("vola"))).toBe(false);
    const next = await volumes.create({ volumeId: "vole", teamId: "t1", name: "data", sizeMiB: 16 });
    expect(next.exportId).toBeGreaterThan(3);
  }, 60_000);
});
