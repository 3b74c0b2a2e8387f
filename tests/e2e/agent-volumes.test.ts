import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, spawnAgentProcess, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * Real microVMs mounting a volume served by the agent's nfs-ganesha over NFSv3 through each
 * sandbox's gateway: shared between two sandboxes, kept across pause/resume, and still there
 * after both are gone. Its own name prefix, slots and server ports, so it runs beside a live
 * agent.
 */
const PREFIX = "wvole";
const MOUNT = "/mnt/shared";

describe("host agent: volumes", () => {
  let fx: AgentFixture;
  let volumesDir = "";

  const overrides = {
    netNamePrefix: PREFIX,
    firstSlot: 2600,
    volumes: true,
    nfsPort: 32149,
    nfsMountPort: 32148,
  };

  beforeAll(async () => {
    fx = await startAgent(overrides);
    volumesDir = join(fx.dataDir, "volumes");
  }, 300_000);

  afterAll(async () => {
    // Closing with its sandboxes stops the volume server and unmounts the volumes' images.
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(volumesDir);
  }, 120_000);

  it("serves one volume to two sandboxes, across pause/resume, and keeps it after both are gone", async () => {
    const { volume } = await fx.client.createVolume({
      volumeId: "vshared",
      teamId: "t1",
      name: "shared",
      sizeMib: 64,
    });
    expect(volume?.sizeMib).toBe(64);

    const sandboxes: string[] = [];
    for (let i = 0; i < 2; i++) {
      const res = await fx.client.createSandbox({
        image: "base",
        resources: { vcpus: 1, memoryMib: 512 },
        volumeMounts: [{ volumeId: "vshared", path: MOUNT }],
      });
      sandboxes.push(res.sandbox?.sandboxId ?? "");
    }
    const [a, b] = sandboxes as [string, string];

    const mounted = await exec(fx, a, `grep ' ${MOUNT} ' /proc/mounts; df -m ${MOUNT} | tail -1`);
    expect(mounted.exitCode, mounted.stderr).toBe(0);
    expect(mounted.stdout).toContain("nfs");
    const write = await exec(fx, a, `echo from-a > ${MOUNT}/a.txt && ls -ln ${MOUNT}/a.txt`);
    expect(write.exitCode, write.stderr).toBe(0);
    expect(await exec(fx, b, `cat ${MOUNT}/a.txt`)).toMatchObject({ exitCode: 0, stdout: "from-a\n" });
    expect(readFileSync(join(volumesDir, "vshared", "mnt", "a.txt"), "utf8")).toBe("from-a\n");

    await fx.client.pauseSandbox({ sandboxId: a });
    await fx.client.resumeSandbox({ sandboxId: a });
    const after = await exec(fx, a, `cat ${MOUNT}/a.txt && echo after-resume > ${MOUNT}/b.txt`, {
      timeoutMs: 120_000,
    });
    expect(after).toMatchObject({ exitCode: 0, stdout: "from-a\n" });
    expect(await exec(fx, b, `cat ${MOUNT}/b.txt`)).toMatchObject({ exitCode: 0, stdout: "after-resume\n" });

    await expect(fx.client.deleteVolume({ volumeId: "vshared" })).rejects.toThrow(/mounted/);
    for (const id of sandboxes) await fx.client.destroySandbox({ sandboxId: id });
    const { volumes } = await fx.client.listVolumes({ teamId: "t1" });
    expect(volumes.map((v) => v.volumeId)).toEqual(["vshared"]);
    expect(existsSync(join(volumesDir, "vshared", "mnt", "b.txt"))).toBe(true);

    // A new sandbox sees what the others left.
    const c = (
      await fx.client.createSandbox({
        image: "base",
        resources: { vcpus: 1, memoryMib: 512 },
        volumeMounts: [{ volumeId: "vshared", path: MOUNT }],
      })
    ).sandbox?.sandboxId as string;
    expect(await exec(fx, c, `cat ${MOUNT}/a.txt ${MOUNT}/b.txt`)).toMatchObject({
      exitCode: 0,
      stdout: "from-a\nafter-resume\n",
    });
    await fx.client.destroySandbox({ sandboxId: c });
    await fx.client.deleteVolume({ volumeId: "vshared" });
    expect(existsSync(join(volumesDir, "vshared"))).toBe(false);
  }, 900_000);

  it("lets clones of a snapshot use its volumes: the owner team's clones and forks, not another team's", async () => {
    await fx.client.createVolume({ volumeId: "vsnap", teamId: "t1", name: "snap", sizeMib: 32 });
    const create = async (req: { snapshot?: string; teamId?: string; mount?: boolean }) =>
      (
        await fx.client.createSandbox({
          image: "base",
          resources: { vcpus: 1, memoryMib: 512 },
          snapshot: req.snapshot ?? "",
          teamId: req.teamId ?? "",
          volumeMounts: req.mount ? [{ volumeId: "vsnap", path: MOUNT }] : [],
        })
      ).sandbox?.sandboxId as string;
    const mountsOf = (id: string) => fx.agent.manager.get(id).volumeMounts;
    const src = await create({ teamId: "t1", mount: true });
    expect((await exec(fx, src, `echo from-source > ${MOUNT}/s.txt`)).exitCode).toBe(0);
    await fx.client.createSnapshot({ sandboxId: src, name: "volsnap" });

    const mine = await create({ snapshot: "volsnap", teamId: "t1" });
    expect(mountsOf(mine)).toEqual([{ volumeId: "vsnap", path: MOUNT }]);
    expect(await exec(fx, mine, `cat ${MOUNT}/s.txt && echo from-clone > ${MOUNT}/c.txt`)).toMatchObject({
      exitCode: 0,
      stdout: "from-source\n",
    });
    expect(await exec(fx, src, `cat ${MOUNT}/c.txt`)).toMatchObject({ exitCode: 0, stdout: "from-clone\n" });

    // Another team's clone has the mount frozen in its memory but its slot is not granted it.
    const theirs = await create({ snapshot: "volsnap", teamId: "t2" });
    expect(mountsOf(theirs)).toBeUndefined();
    const denied = await exec(fx, theirs, `timeout 30 cat ${MOUNT}/s.txt`, { timeoutMs: 60_000 });
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stdout).toBe("");
    expect(denied.stderr).toMatch(/permission denied/i);
    await fx.client.destroySandbox({ sandboxId: theirs });

    // A fork of the clone keeps the volume (its source's owner is its owner).
    const [fork] = (await fx.client.forkSandbox({ sandboxId: mine, count: 1 })).sandboxes.map(
      (s) => s.sandboxId,
    );
    expect(mountsOf(fork as string)).toEqual([{ volumeId: "vsnap", path: MOUNT }]);
    expect(
      await exec(fx, fork as string, `cat ${MOUNT}/c.txt && echo from-fork > ${MOUNT}/f.txt`),
    ).toMatchObject({
      exitCode: 0,
      stdout: "from-clone\n",
    });
    expect(await exec(fx, src, `cat ${MOUNT}/f.txt`)).toMatchObject({ exitCode: 0, stdout: "from-fork\n" });

    // The clones still mount it once the source is gone: the volume cannot be deleted.
    await fx.client.destroySandbox({ sandboxId: src });
    await expect(fx.client.deleteVolume({ volumeId: "vsnap" })).rejects.toThrow(/mounted/);
    await fx.client.destroySandbox({ sandboxId: mine });
    await fx.client.destroySandbox({ sandboxId: fork as string });
    await fx.client.deleteSnapshot({ name: "volsnap" });
    await fx.client.deleteVolume({ volumeId: "vsnap" });
  }, 900_000);
});

describe("host agent: volumes across an agent crash", () => {
  const RESTART_PREFIX = "wvolr";
  const dataDir = mkdtempSync(join(tmpdir(), "wrenn-agent-volumes-"));
  const token = randomBytes(24).toString("hex");

  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it("keeps a running sandbox's mount working after the agent is killed and restarted", async () => {
    const ports = { nfsPort: 32159, nfsMountPort: 32158 };
    const first = await spawnAgentProcess(dataDir, token, {
      WRENN_NET_PREFIX: RESTART_PREFIX,
      WRENN_FIRST_SLOT: "2650",
      WRENN_VOLUMES: "1",
      WRENN_VOLUMES_DIR: join(dataDir, "volumes"),
      WRENN_NFS_PORT: String(ports.nfsPort),
      WRENN_NFS_MOUNT_PORT: String(ports.nfsMountPort),
    });
    const { client } = first;
    await client.createVolume({ volumeId: "vrestart", teamId: "t1", name: "restart", sizeMib: 32 });
    const { sandbox } = await client.createSandbox({
      image: "base",
      envdAccessToken: first.envdAccessToken,
      volumeMounts: [{ volumeId: "vrestart", path: MOUNT }],
    });
    const id = sandbox?.sandboxId ?? "";
    expect((await exec(first, id, `echo before > ${MOUNT}/r.txt`)).exitCode).toBe(0);
    await first.crash();

    const second = await startAgent(
      { netNamePrefix: RESTART_PREFIX, firstSlot: 2650, volumes: true, ...ports },
      { dataDir, token },
    );
    try {
      expect(await exec(second, id, `cat ${MOUNT}/r.txt && echo after > ${MOUNT}/r2.txt`)).toMatchObject({
        exitCode: 0,
        stdout: "before\n",
      });
      expect(readFileSync(join(dataDir, "volumes", "vrestart", "mnt", "r2.txt"), "utf8")).toBe("after\n");
      await second.client.destroySandbox({ sandboxId: id });
      await second.client.deleteVolume({ volumeId: "vrestart" });
    } finally {
      await second.close({ destroySandboxes: true, keepDataDir: true });
    }
    expect(findHostLeftovers(dataDir, RESTART_PREFIX)).toEqual(NO_LEFTOVERS);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(dataDir);
  }, 900_000);
});
