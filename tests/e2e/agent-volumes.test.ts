import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
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

  beforeAll(async () => {
    fx = await startAgent({
      netNamePrefix: PREFIX,
      firstSlot: 2600,
      volumes: true,
      nfsPort: 32149,
      nfsMountPort: 32148,
    });
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
});
