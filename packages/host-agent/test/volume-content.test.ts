import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VolumeContent } from "../src/volumes/volume-content.js";

// Real files in a real directory: the content API's confinement is checked against links
// a guest could plant, pointing at a directory outside the volume.
const base = mkdtempSync(join(tmpdir(), "wrenn-volcontent-"));
const root = join(base, "volume");
const outside = join(base, "outside");
const content = new VolumeContent(root);
const body = (text: string) => Readable.from([Buffer.from(text)]);

beforeAll(() => {
  mkdirSync(root);
  mkdirSync(outside);
  execFileSync("chown", ["1000:1000", root]);
  writeFileSync(join(outside, "secret"), "host file");
  symlinkSync(outside, join(root, "escape"));
  symlinkSync(join(outside, "secret"), join(root, "secret-link"));
});
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("volume content", () => {
  it("writes, reads and stats a file owned like its directory", async () => {
    const stat = await content.writeFile("/a.txt", body("hello"));
    expect(stat).toMatchObject({
      name: "a.txt",
      path: "/a.txt",
      type: "file",
      size: 5,
      mode: 0o644,
      uid: 1000,
      gid: 1000,
    });
    const { handle, size } = await content.openFile("a.txt");
    expect(size).toBe(5);
    expect((await handle.readFile()).toString()).toBe("hello");
    await handle.close();
    expect(await content.stat("/a.txt")).toMatchObject({ size: 5, type: "file" });
  });

  it("overwrites only with force, and never leaves an upload file", async () => {
    await expect(content.writeFile("/a.txt", body("again"))).rejects.toMatchObject({
      code: "already_exists",
    });
    await content.writeFile("/a.txt", body("again!"), { force: true, uid: 0, gid: 0, mode: 0o600 });
    expect(readFileSync(join(root, "a.txt"), "utf8")).toBe("again!");
    expect(statSync(join(root, "a.txt")).mode & 0o7777).toBe(0o600);
    const names = (await content.list("/")).map((e) => e.name);
    expect(names.some((n) => n.startsWith(".wrenn-upload-"))).toBe(false);
  });

  it("makes directories, with parents only under force", async () => {
    await expect(content.makeDir("/x/y/z")).rejects.toMatchObject({ code: "not_found" });
    const made = await content.makeDir("/x/y/z", { force: true, mode: 0o750 });
    expect(made).toMatchObject({ path: "/x/y/z", type: "directory", mode: 0o750, uid: 1000 });
    await expect(content.makeDir("/x/y/z")).rejects.toMatchObject({ code: "already_exists" });
    await expect(content.makeDir("/x/y/z", { force: true })).resolves.toMatchObject({ type: "directory" });
    await expect(content.makeDir("/a.txt/b", { force: true })).rejects.toMatchObject({
      code: "already_exists",
    });
  });

  it("lists to a depth, showing links without following them", async () => {
    await content.writeFile("/x/y/z/deep.txt", body("d"));
    const one = await content.list("/");
    expect(one.map((e) => e.path)).toEqual(["/a.txt", "/escape", "/secret-link", "/x"]);
    expect(one.find((e) => e.name === "escape")).toMatchObject({ type: "symlink", target: outside });
    const deep = await content.list("/x", 3);
    expect(deep.map((e) => e.path)).toEqual(["/x/y", "/x/y/z", "/x/y/z/deep.txt"]);
    await expect(content.list("/nope")).rejects.toMatchObject({ code: "not_found" });
  });

  it("never reaches outside the volume through a link", async () => {
    await expect(content.openFile("/secret-link")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(content.openFile("/escape/secret")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(content.writeFile("/escape/new", body("x"))).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(content.makeDir("/escape/d", { force: true })).rejects.toMatchObject({
      code: "already_exists",
    });
    await expect(content.update("/secret-link", { mode: 0o777 })).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(content.list("/escape")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(content.stat("/../outside/secret")).rejects.toMatchObject({ code: "invalid_argument" });
    // Removing a link removes the link, not what it points at.
    await content.remove("/escape");
    expect(readFileSync(join(outside, "secret"), "utf8")).toBe("host file");
    expect(statSync(join(outside, "secret")).mode & 0o7777).not.toBe(0o777);
  });

  it("changes owner and mode, and removes trees but not the root", async () => {
    const changed = await content.update("/x", { uid: 1234, mode: 0o700 });
    expect(changed).toMatchObject({ uid: 1234, gid: 1000, mode: 0o700 });
    await content.remove("/x");
    await expect(content.stat("/x")).rejects.toMatchObject({ code: "not_found" });
    await expect(content.remove("/")).rejects.toMatchObject({ code: "invalid_argument" });
    await expect(content.remove("/x")).rejects.toMatchObject({ code: "not_found" });
  });

  it("says when a full volume refuses a write, leaving no partial file", async () => {
    const small = join(base, "small");
    mkdirSync(small);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k", "wrenn-volcontent-test", small]);
    try {
      const full = new VolumeContent(small);
      const big = Readable.from([Buffer.alloc(1024 * 1024, 1)]);
      await expect(full.writeFile("/big", big)).rejects.toMatchObject({ code: "resource_exhausted" });
      expect((await full.list("/")).length).toBe(0);
    } finally {
      execFileSync("umount", [small]);
    }
  });
});
