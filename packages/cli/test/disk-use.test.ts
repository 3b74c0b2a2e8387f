import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  classifySnapshot,
  type DiskUse,
  diskUseDirs,
  formatDiskUse,
  measureDiskUse,
} from "../src/commands/disk-use.js";

/** Allocated bytes of the paths together, as GNU du counts them. */
function du(...paths: string[]): number {
  const out = execFileSync("du", ["-s", "-c", "-B1", ...paths], { encoding: "utf8" });
  return Number(out.trim().split("\n").at(-1)?.split(/\s+/)[0]);
}

describe("disk use", () => {
  const root = mkdtempSync(join(tmpdir(), "wrenn-disk-use-"));
  const dirs = {
    imagesDir: join(root, "images"),
    agentDataDir: join(root, "agent"),
    templateFilesDir: join(root, "cp", "template-files"),
  };
  const snap = (id: string) => join(dirs.agentDataDir, "templates", id);
  const mem = (id: string) =>
    ["mem", "dev", "hdr"].map((e) => join(dirs.agentDataDir, "memory", `${id}.${e}`));
  let use: DiskUse;

  /** A snapshot record with a disk layer of `diskKiB` and memory files of `memKiB`. */
  const record = (id: string, fields: Record<string, unknown>, diskKiB: number, memKiB: number) => {
    mkdirSync(snap(id), { recursive: true });
    writeFileSync(
      join(snap(id), "template.json"),
      JSON.stringify({ id, memorySnapshot: `m${id}`, ...fields }),
    );
    writeFileSync(join(snap(id), "disk.qcow2"), Buffer.alloc(diskKiB * 1024, 1));
    const [data, dev, hdr] = mem(`m${id}`);
    writeFileSync(data ?? "", Buffer.alloc(memKiB * 1024, 2));
    writeFileSync(dev ?? "", "device state");
    writeFileSync(hdr ?? "", "header");
  };

  beforeAll(async () => {
    // An image build with a sparse 100 MiB rootfs holding 64 KiB, and the `current` symlink.
    const build = join(dirs.imagesDir, "base", "abc123");
    mkdirSync(build, { recursive: true });
    const rootfs = join(build, "rootfs.ext4");
    writeFileSync(rootfs, Buffer.alloc(64 * 1024, 3));
    truncateSync(rootfs, 100 * 1024 * 1024);
    writeFileSync(join(build, "manifest.json"), "{}");
    symlinkSync(build, join(dirs.imagesDir, "base", "current"));
    mkdirSync(join(dirs.agentDataDir, "memory"), { recursive: true });
    record("t1", { name: "b-bld1" }, 96, 200);
    record("t2", { name: "c-0123abcd" }, 32, 40);
    record("t3", { name: "c-4567cdef" }, 32, 40);
    record("t4", { name: "base-1x512", imageKey: "base@abc:1:512:tcg" }, 16, 300);
    record("t5", { name: "my-snap" }, 8, 20);
    record("t6", { name: "", hidden: true }, 8, 20);
    record("t7", { name: "", deleted: true }, 8, 20);
    // A directory whose record never got written: not a snapshot.
    mkdirSync(snap("t8"), { recursive: true });
    writeFileSync(join(snap("t8"), "disk.qcow2"), Buffer.alloc(4096));
    mkdirSync(join(dirs.templateFilesDir, "team1"), { recursive: true });
    writeFileSync(join(dirs.templateFilesDir, "team1", `${"a".repeat(64)}.tar.gz`), Buffer.alloc(10_000, 4));
    use = await measureDiskUse(dirs);
  });

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("classifies snapshot records by name, image key and deletion", () => {
    expect(classifySnapshot({ name: "b-x" })).toBe("templates");
    expect(classifySnapshot({ name: "c-x" })).toBe("stepCaches");
    expect(classifySnapshot({ name: "b-x", imageKey: "k" })).toBe("imageSnapshots");
    expect(classifySnapshot({ name: "bx" })).toBe("snapshots");
    expect(classifySnapshot({ name: "", deleted: true })).toBe("deletedInUse");
  });

  it("sizes each class by allocated blocks, as du does, a record with its memory files", () => {
    expect(use.templates).toEqual({ count: 1, bytes: du(snap("t1"), ...mem("mt1")) });
    expect(use.stepCaches).toEqual({
      count: 2,
      bytes: du(snap("t2"), ...mem("mt2")) + du(snap("t3"), ...mem("mt3")),
    });
    expect(use.imageSnapshots).toEqual({ count: 1, bytes: du(snap("t4"), ...mem("mt4")) });
    expect(use.snapshots).toEqual({
      count: 2,
      bytes: du(snap("t5"), ...mem("mt5")) + du(snap("t6"), ...mem("mt6")),
    });
    expect(use.deletedInUse).toEqual({ count: 1, bytes: du(snap("t7"), ...mem("mt7")) });
    const archive = join(dirs.templateFilesDir, "team1", `${"a".repeat(64)}.tar.gz`);
    expect(use.templateFiles).toEqual({ count: 1, bytes: du(archive) });
  });

  it("counts a sparse file's allocated blocks, not its length, and follows no symlink", () => {
    expect(use.images.count).toBe(1);
    expect(use.images.bytes).toBe(du(join(dirs.imagesDir, "base")));
    expect(use.images.bytes).toBeGreaterThanOrEqual(64 * 1024);
    expect(use.images.bytes).toBeLessThan(2 * 1024 * 1024);
  });

  it("prints one line, and reads its directories from the environment", () => {
    expect(formatDiskUse(use)).toMatch(
      /^[\d.]+ \w+: images [\d.]+ \w+ \(1\), templates [\d.]+ KiB \(1\), step caches [\d.]+ KiB \(2\), image snapshots .* \(1\), user snapshots .* \(2\), deleted, still in use .* \(1\), template files .* \(1\)$/,
    );
    expect(diskUseDirs({ WRENN_DIR: "/w" })).toEqual({
      imagesDir: "/w/images",
      agentDataDir: "/w/agent",
      templateFilesDir: "/w/cp/template-files",
    });
    expect(
      diskUseDirs({ WRENN_DIR: "/w", WRENN_IMAGES_DIR: "/i", WRENN_AGENT_DATA_DIR: "/a" }),
    ).toMatchObject({
      imagesDir: "/i",
      agentDataDir: "/a",
    });
  });
});
