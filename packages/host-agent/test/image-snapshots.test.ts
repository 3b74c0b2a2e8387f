import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { describe, expect, it } from "vitest";
import type { SnapshotRecord } from "../src/sandbox/snapshot-store.js";
import { codeOf, type Harness, harnessForEachTest } from "./sandbox-harness.js";

let h: Harness;
const harness = harnessForEachTest(
  (next) => {
    h = next;
  },
  { imageSnapshots: true },
);

/** Snapshot records on disk (the store's files), live ones only. */
function snapshotsOnDisk(): SnapshotRecord[] {
  const dir = join(h.dir, "templates");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .map((id) => JSON.parse(readFileSync(join(dir, id, "template.json"), "utf8")) as SnapshotRecord)
    .filter((s) => !s.deleted);
}

const coldBoots = () => h.driver.vms.filter((vm) => vm.restoredFrom === undefined);

describe("image snapshots (every create from an image restores)", () => {
  it("the first create builds the image's snapshot with one cold boot; the sandbox restores it", async () => {
    const record = await h.manager.create({
      sandboxId: "sbx-a",
      image: "base",
      envVars: { WHO: "a" },
      envdAccessToken: "tok-a",
      metadata: { owner: "a" },
    });
    expect(record).toMatchObject({ state: "running", image: "base" });
    expect(record.fromSnapshot).toBeUndefined();
    expect(coldBoots()).toHaveLength(1);
    const vm = h.driver.liveOf("sbx-a");
    expect(vm?.restoredFrom).toBeDefined();

    const [snapshot] = snapshotsOnDisk();
    expect(snapshotsOnDisk()).toHaveLength(1);
    expect(snapshot).toMatchObject({ hidden: true, image: "base", imageBuild: "build-1" });
    expect(snapshot?.imageKey).toBe("base-build-1-1c-256m-tcg");
    expect(record.dependsOn).toEqual([snapshot?.id]);
    expect(record.memorySnapshot).toBe(snapshot?.memorySnapshot);

    // The build VM held nothing of any user, and is gone: not listed, no record, no VM.
    const buildInit = h.envd.inits[0];
    expect(buildInit?.body.envVars).toEqual({});
    expect(buildInit?.body.accessToken).toBe(snapshot?.envdAccessToken);
    expect(h.manager.list().map((r) => r.id)).toEqual(["sbx-a"]);
    expect(readdirSync(h.sandboxesDir)).toEqual(["sbx-a"]);
    expect(h.driver.live().map((v) => v.id)).toEqual(["sbx-a"]);

    // The clone presents the snapshot's token first and gets its own token, env and fresh entropy.
    const init = h.envd.inits.at(-1);
    expect(init?.token).toBe(snapshot?.envdAccessToken);
    expect(init?.body).toMatchObject({ accessToken: "tok-a", envVars: { WHO: "a" } });
    expect(init?.body.entropy).toBeDefined();

    // A second create restores the same snapshot: no new cold boot.
    await h.manager.create({ sandboxId: "sbx-b", image: "base", envdAccessToken: "tok-b" });
    expect(coldBoots()).toHaveLength(1);
    expect(h.envd.inits.at(-1)?.body.entropy).not.toBe(init?.body.entropy);
  });

  it("concurrent creates wait for one build", async () => {
    const created = await Promise.all(
      ["sbx-1", "sbx-2", "sbx-3"].map((sandboxId) => h.manager.create({ sandboxId, image: "base" })),
    );
    expect(created.map((r) => r.state)).toEqual(["running", "running", "running"]);
    expect(coldBoots()).toHaveLength(1);
    expect(snapshotsOnDisk()).toHaveLength(1);
    expect(h.manager.imageSnapshots?.inFlight).toBe(0);
  });

  it("a failed build leaves nothing, fails every waiting create clearly, and the next create retries", async () => {
    h.envd.healthy = false;
    const results = await Promise.allSettled(
      ["sbx-1", "sbx-2"].map((sandboxId) => h.manager.create({ sandboxId, image: "base" })),
    );
    for (const result of results) {
      expect(result.status).toBe("rejected");
      const err = WrennError.from((result as PromiseRejectedResult).reason);
      expect(err.code).toBe("deadline_exceeded");
      expect(err.message).toMatch(/preparing the snapshot of image base \(1 vCPUs, 256 MiB\) failed/);
    }
    expect(coldBoots()).toHaveLength(1);
    expect(snapshotsOnDisk()).toEqual([]);
    expect(readdirSync(join(h.dir, "templates"))).toEqual([]);
    expect(readdirSync(join(h.dir, "memory"))).toEqual([]);
    expect(readdirSync(h.sandboxesDir)).toEqual([]);
    expect([...h.slots.leases()]).toEqual([]);
    expect([...h.network.live]).toEqual([]);
    expect(h.driver.live()).toEqual([]);

    h.envd.healthy = true;
    expect((await h.manager.create({ sandboxId: "sbx-3", image: "base" })).state).toBe("running");
    expect(coldBoots()).toHaveLength(2);
    expect(snapshotsOnDisk()).toHaveLength(1);
  });

  it("a build failing after its memory snapshot was written leaves no memory files", async () => {
    h.records.failSave = (r) => r.internal === true && r.state === "paused";
    expect(await codeOf(h.manager.create({ sandboxId: "sbx-1", image: "base" }))).toBe("internal");
    expect(readdirSync(join(h.dir, "memory"))).toEqual([]);
    expect(readdirSync(join(h.dir, "templates"))).toEqual([]);
    expect(readdirSync(h.sandboxesDir)).toEqual([]);
    expect(h.driver.live()).toEqual([]);
    expect([...h.slots.leases()]).toEqual([]);
  });

  it("other sizes build a variant on first use", async () => {
    await h.manager.create({ sandboxId: "sbx-small", image: "base" });
    await h.manager.create({ sandboxId: "sbx-big", image: "base", resources: { memoryMiB: 512, vcpus: 2 } });
    expect(coldBoots()).toHaveLength(2);
    expect(h.driver.liveOf("sbx-big")?.spec).toMatchObject({ vcpus: 2, memoryMiB: 512 });
    expect(
      snapshotsOnDisk()
        .map((s) => s.imageKey)
        .sort(),
    ).toEqual(["base-build-1-1c-256m-tcg", "base-build-1-2c-512m-tcg"]);
    await h.manager.destroy("sbx-big");
    await h.manager.create({ sandboxId: "sbx-big2", image: "base", resources: { memoryMiB: 512, vcpus: 2 } });
    expect(coldBoots()).toHaveLength(2);
  });

  it("a disk smaller than the image is refused before any build", async () => {
    expect(await codeOf(h.manager.create({ image: "base", resources: { diskMiB: 0.5 } }))).toBe(
      "invalid_argument",
    );
    expect(coldBoots()).toHaveLength(0);
  });

  it("a rebuilt image gets a new snapshot; the old one goes with its last dependent", async () => {
    await h.manager.create({ sandboxId: "sbx-old", image: "base" });
    const [old] = snapshotsOnDisk();
    const build = join(h.dir, "images", "base", "build-2");
    mkdirSync(build);
    writeFileSync(join(build, "vmlinuz"), "kernel 2");
    writeFileSync(join(build, "initrd.img"), "initrd 2");
    writeFileSync(join(build, "rootfs.ext4"), Buffer.alloc(1024 * 1024));
    rmSync(join(h.dir, "images", "base", "current"));
    symlinkSync(build, join(h.dir, "images", "base", "current"));

    await h.manager.create({ sandboxId: "sbx-new", image: "base" });
    expect(coldBoots()).toHaveLength(2);
    expect(snapshotsOnDisk().map((s) => s.imageBuild)).toEqual(["build-2"]);
    // Deleted but kept: sbx-old still reads its files.
    expect(existsSync(join(h.dir, "templates", old?.id ?? ""))).toBe(true);
    await h.manager.destroy("sbx-old");
    expect(existsSync(join(h.dir, "templates", old?.id ?? ""))).toBe(false);
    expect(h.manager.get("sbx-new").state).toBe("running");
  });

  it("a sandbox restored from an image snapshot pauses, resumes, snapshots and forks", async () => {
    await h.manager.create({ sandboxId: "sbx-p", image: "base", envdAccessToken: "tok-p" });
    const paused = await h.manager.pause("sbx-p");
    expect(paused.generation).toBe(1);
    expect((await h.manager.resume("sbx-p")).state).toBe("running");
    await h.manager.snapshots.create("sbx-p", "named");
    const clone = await h.manager.create({ sandboxId: "sbx-c", image: "base", snapshot: "named" });
    expect(clone).toMatchObject({ state: "running", fromSnapshot: "named" });
    const forks = await h.manager.snapshots.fork("sbx-p", 1);
    expect(forks[0]?.state).toBe("running");
    expect(coldBoots()).toHaveLength(1);
    expect(h.manager.snapshots.list().map((s) => s.snapshot.name)).toEqual(["named"]);
  });

  it("a build interrupted by a restart is cleaned away, never adopted", async () => {
    await h.manager.create({ sandboxId: "sbx-a", image: "base" });
    const sandbox = h.manager.get("sbx-a");
    await h.records.save({
      ...sandbox,
      id: "image-snapshot-0123456789ab",
      internal: true,
      vmmPid: undefined,
    });
    await h.manager.close({ destroyAll: false });
    const manager = await h.restart();
    const { adopted, cleaned } = await manager.recover();
    expect(adopted).toEqual(["sbx-a"]);
    expect(cleaned).toEqual(["image-snapshot-0123456789ab"]);
    expect(readdirSync(h.sandboxesDir)).toEqual(["sbx-a"]);
  });

  it("turned off, a create from an image cold-boots", async () => {
    await harness.renew({ imageSnapshots: false });
    await h.manager.create({ sandboxId: "sbx-cold", image: "base" });
    expect(h.driver.liveOf("sbx-cold")?.restoredFrom).toBeUndefined();
    expect(snapshotsOnDisk()).toEqual([]);
  });
});
