import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger } from "@wrenn/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { SnapshotRecord } from "../src/sandbox/snapshot-store.js";
import { ImageSnapshotCache } from "../src/snapshot/image-snapshot-cache.js";
import { Harness, makeTestImage } from "./sandbox-harness.js";

/** Two agents on one host (fake VMs, real stores) sharing an images dir and an image snapshot cache. */
let hostDir: string;
let imagesDir: string;
let cacheDir: string;
const harnesses: Harness[] = [];

function newCache(): ImageSnapshotCache {
  return new ImageSnapshotCache({
    dir: cacheDir,
    vmm: "QEMU emulator version test",
    logger: createSilentLogger(),
    pollMs: 20,
  });
}

async function agent(): Promise<Harness> {
  const h = await Harness.create({ imageSnapshots: true }, { imagesDir, imageSnapshotCache: newCache() });
  harnesses.push(h);
  return h;
}

const coldBoots = (h: Harness) => h.driver.vms.filter((vm) => vm.restoredFrom === undefined).length;

function imageSnapshotOf(h: Harness): SnapshotRecord {
  const dir = join(h.dir, "templates");
  const found = readdirSync(dir)
    .map((id) => JSON.parse(readFileSync(join(dir, id, "template.json"), "utf8")) as SnapshotRecord)
    .filter((s) => s.imageKey && !s.deleted);
  expect(found).toHaveLength(1);
  return found[0] as SnapshotRecord;
}

/** The cache's entries (directories that are not in-flight temporaries or claims). */
function entries(): string[] {
  if (!existsSync(cacheDir)) return [];
  return readdirSync(cacheDir).filter((n) => !n.startsWith(".") && !n.endsWith(".claim"));
}

beforeEach(() => {
  hostDir = mkdtempSync(join(tmpdir(), "wrenn-cache-test-"));
  imagesDir = join(hostDir, "images");
  cacheDir = join(hostDir, "image-snapshots");
  makeTestImage(imagesDir);
});

afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.close();
  rmSync(hostDir, { recursive: true, force: true });
});

describe("host-wide image snapshot cache", () => {
  it("the first agent cold-boots and publishes; a second agent takes the entry by hard link", async () => {
    const a = await agent();
    await a.manager.create({ sandboxId: "sbx-a", image: "base" });
    expect(coldBoots(a)).toBe(1);
    expect(entries()).toEqual([expect.stringMatching(/^base-build-1-1c-256m-tcg-v[0-9a-f]{8}$/)]);

    const b = await agent();
    const record = await b.manager.create({ sandboxId: "sbx-b", image: "base", envdAccessToken: "tok-b" });
    expect(record.state).toBe("running");
    expect(coldBoots(b)).toBe(0);
    expect(b.driver.liveOf("sbx-b")?.restoredFrom).toBeDefined();
    const mine = imageSnapshotOf(b);
    const theirs = imageSnapshotOf(a);
    expect(mine.sourceSandboxId).toMatch(/^cache:/);
    expect(mine).toMatchObject({
      imageKey: theirs.imageKey,
      memorySnapshot: theirs.memorySnapshot,
      envdAccessToken: theirs.envdAccessToken,
    });
    // Same inodes: the files are on disk once.
    const inode = (p: string) => statSync(p).ino;
    expect(inode(mine.diskPath)).toBe(inode(theirs.diskPath));
    const mem = `${mine.memorySnapshot}.mem`;
    expect(inode(join(b.dir, "memory", mem))).toBe(inode(join(a.dir, "memory", mem)));
    // The clone presented the frozen guest's token and got its own.
    expect(b.envd.inits.at(-1)).toMatchObject({
      token: theirs.envdAccessToken,
      body: { accessToken: "tok-b" },
    });

    // An agent drops its copy like any image snapshot; the cache and the other agent keep theirs.
    await b.manager.destroy("sbx-b");
    await b.manager.imageSnapshots?.retireOlderBuilds("base", "another-build");
    expect(existsSync(join(a.dir, "memory", mem))).toBe(true);
    expect(entries()).toHaveLength(1);
  });

  it("concurrent agents: one cold boot between them, the other waits for its entry", async () => {
    const [a, b] = [await agent(), await agent()];
    await Promise.all([
      a.manager.create({ sandboxId: "sbx-a", image: "base" }),
      b.manager.create({ sandboxId: "sbx-b", image: "base" }),
    ]);
    expect(coldBoots(a) + coldBoots(b)).toBe(1);
    expect(entries()).toHaveLength(1);
    expect(readdirSync(cacheDir).filter((n) => n.endsWith(".claim"))).toEqual([]);
  });

  it("a corrupt entry is dropped and rebuilt; an unparsable one too", async () => {
    const a = await agent();
    await a.manager.create({ sandboxId: "sbx-a", image: "base" });
    const [name] = entries();
    const memDir = join(cacheDir, name ?? "", "memory");
    const header = readdirSync(memDir).find((f) => f.endsWith(".hdr")) ?? "";
    // A hard link shares the inode: replace the cache's file, not the bytes agent a reads.
    const bytes = readFileSync(join(memDir, header));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    unlinkSync(join(memDir, header));
    writeFileSync(join(memDir, header), bytes);

    const b = await agent();
    await b.manager.create({ sandboxId: "sbx-b", image: "base" });
    expect(coldBoots(b)).toBe(1);
    expect(entries()).toHaveLength(1);
    expect(imageSnapshotOf(b).sourceSandboxId).not.toMatch(/^cache:/);

    writeFileSync(join(cacheDir, entries()[0] ?? "", "entry.json"), "{not json");
    const c = await agent();
    await c.manager.create({ sandboxId: "sbx-c", image: "base" });
    expect(coldBoots(c)).toBe(1);
    const d = await agent();
    await d.manager.create({ sandboxId: "sbx-d", image: "base" });
    expect(coldBoots(d)).toBe(0);
  });

  it("a claim whose builder is gone is taken over at once", async () => {
    const cache = newCache();
    const key = "base-build-1-1c-256m-tcg";
    const claim = await cache.claim(key);
    expect(claim).toBeDefined();
    expect(await cache.claim(key)).toBeUndefined();
    await claim?.release();
    const path = join(cacheDir, `${cache.entryName(key)}.claim`);
    writeFileSync(path, JSON.stringify({ pid: 99_999_999, token: "dead" }));
    const a = await agent();
    await a.manager.create({ sandboxId: "sbx-a", image: "base" });
    expect(coldBoots(a)).toBe(1);
    expect(existsSync(path)).toBe(false);
    expect(entries()).toHaveLength(1);
  });

  it("an unusable cache (here a file where its directory should be) costs a cold boot, never a create", async () => {
    writeFileSync(cacheDir, "not a directory");
    const a = await agent();
    const record = await a.manager.create({ sandboxId: "sbx-a", image: "base" });
    expect(record.state).toBe("running");
    expect(coldBoots(a)).toBe(1);
    rmSync(cacheDir);
  });

  it("entries of an image build that is gone are removed", async () => {
    const a = await agent();
    await a.manager.create({ sandboxId: "sbx-a", image: "base" });
    await a.manager.destroy("sbx-a");
    expect(entries()).toHaveLength(1);
    // A new build of the image lands and the old one is deleted from the images dir.
    rmSync(join(imagesDir, "base", "current"));
    makeTestImage(imagesDir, "build-2");
    rmSync(join(imagesDir, "base", "build-1"), { recursive: true, force: true });
    expect(await newCache().collect()).toHaveLength(1);
    expect(entries()).toEqual([]);
  });
});
