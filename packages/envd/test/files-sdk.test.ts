import { lstatSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FileNotFoundError, FileType, InvalidArgumentError, type Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import { ensureTestUser, type TestUser } from "./files-helpers.js";

describe("envd filesystem through the stock e2b SDK", () => {
  let fx: EnvdFixture;
  let sbx: Sandbox;
  let user: TestUser;
  const scratch = (...parts: string[]) => join(fx.workDir, ...parts);

  beforeAll(async () => {
    user = ensureTestUser();
    fx = await startEnvd();
    sbx = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  it("writes and reads text, bytes, blobs and streams", async () => {
    const info = await sbx.files.write(scratch("text.txt"), "hello ünïcode");
    expect(info).toMatchObject({ path: scratch("text.txt"), name: "text.txt", type: "file" });
    expect(await sbx.files.read(scratch("text.txt"))).toBe("hello ünïcode");

    const bytes = new Uint8Array([0, 1, 2, 253, 254, 255]);
    await sbx.files.write(scratch("bytes.bin"), bytes.buffer);
    expect(await sbx.files.read(scratch("bytes.bin"), { format: "bytes" })).toEqual(bytes);
    const blob = await sbx.files.read(scratch("bytes.bin"), { format: "blob" });
    expect(new Uint8Array(await blob.arrayBuffer())).toEqual(bytes);

    await sbx.files.write(scratch("blob.txt"), new Blob(["from a blob"]));
    expect(readFileSync(scratch("blob.txt"), "utf8")).toBe("from a blob");

    // A ReadableStream goes up as application/octet-stream, streamed.
    const chunks = ["stream ", "of ", "chunks"];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
        controller.close();
      },
    });
    await sbx.files.write(scratch("deep", "er", "stream.txt"), stream);
    const out = await sbx.files.read(scratch("deep", "er", "stream.txt"), { format: "stream" });
    let text = "";
    for await (const chunk of out) text += new TextDecoder().decode(chunk);
    expect(text).toBe("stream of chunks");

    // Empty files and gzip in both directions.
    await sbx.files.write(scratch("empty.txt"), "");
    expect(await sbx.files.read(scratch("empty.txt"))).toBe("");
    await sbx.files.write(scratch("gz.txt"), "x".repeat(10_000), { gzip: true });
    expect(await sbx.files.read(scratch("gz.txt"), { gzip: true })).toBe("x".repeat(10_000));
  });

  it("writes several files in one multipart request, creating parents", async () => {
    const written = await sbx.files.write([
      { path: scratch("multi", "a.txt"), data: "A" },
      { path: scratch("multi", "sub", "b.txt"), data: "B" },
    ]);
    expect(written.map((w) => w.path)).toEqual([scratch("multi", "a.txt"), scratch("multi", "sub", "b.txt")]);
    expect(readFileSync(scratch("multi", "sub", "b.txt"), "utf8")).toBe("B");
  });

  it("overwrites an existing file completely", async () => {
    await sbx.files.write(scratch("over.txt"), "a long original text");
    await sbx.files.write(scratch("over.txt"), "short");
    expect(await sbx.files.read(scratch("over.txt"))).toBe("short");
  });

  it("lists with depth, types, permissions and owners", async () => {
    mkdirSync(scratch("tree", "d1", "d2"), { recursive: true });
    writeFileSync(scratch("tree", "f.txt"), "12345");
    writeFileSync(scratch("tree", "d1", "g.txt"), "1");
    writeFileSync(scratch("tree", "d1", "d2", "h.txt"), "1");
    symlinkSync(scratch("tree", "f.txt"), scratch("tree", "link"));

    const one = await sbx.files.list(scratch("tree"));
    expect(one.map((e) => e.name)).toEqual(["d1", "f.txt", "link"]);
    const file = one.find((e) => e.name === "f.txt");
    expect(file).toMatchObject({
      type: FileType.FILE,
      size: 5,
      mode: 0o644,
      permissions: "-rw-r--r--",
      owner: "root",
      group: "root",
      path: scratch("tree", "f.txt"),
    });
    expect(file?.modifiedTime?.getTime()).toBe(Math.floor(statSync(scratch("tree", "f.txt")).mtimeMs));
    // A symlink reports its target's type and its own "L" permission string.
    expect(one.find((e) => e.name === "link")).toMatchObject({
      type: FileType.FILE,
      symlinkTarget: scratch("tree", "f.txt"),
      permissions: "Lrwxrwxrwx",
    });
    expect(one.find((e) => e.name === "d1")).toMatchObject({ type: FileType.DIR, permissions: "drwxr-xr-x" });

    const two = await sbx.files.list(scratch("tree"), { depth: 2 });
    expect(two.map((e) => e.path)).toEqual([
      scratch("tree", "d1"),
      scratch("tree", "d1", "d2"),
      scratch("tree", "d1", "g.txt"),
      scratch("tree", "f.txt"),
      scratch("tree", "link"),
    ]);
    const three = await sbx.files.list(scratch("tree"), { depth: 3 });
    expect(three.map((e) => e.name)).toContain("h.txt");
  });

  it("lists names that are not valid UTF-8 without failing", async () => {
    mkdirSync(scratch("latin1"));
    writeFileSync(Buffer.concat([Buffer.from(`${scratch("latin1")}/caf`), Buffer.from([0xe9])]), "x");
    const entries = await sbx.files.list(scratch("latin1"));
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ name: "caf\ufffd", type: FileType.FILE, size: 1 });
  });

  it("answers exists and getInfo", async () => {
    writeFileSync(scratch("here.txt"), "hi");
    expect(await sbx.files.exists(scratch("here.txt"))).toBe(true);
    expect(await sbx.files.exists(scratch("missing.txt"))).toBe(false);
    expect(await sbx.files.getInfo(scratch("here.txt"))).toMatchObject({
      name: "here.txt",
      type: FileType.FILE,
      size: 2,
    });
    await expect(sbx.files.getInfo(scratch("missing.txt"))).rejects.toBeInstanceOf(FileNotFoundError);
  });

  it("makes directories, reporting whether they were new", async () => {
    expect(await sbx.files.makeDir(scratch("made", "deep", "er"))).toBe(true);
    expect(statSync(scratch("made", "deep", "er")).isDirectory()).toBe(true);
    expect(await sbx.files.makeDir(scratch("made", "deep"))).toBe(false);
    writeFileSync(scratch("plain.txt"), "");
    await expect(sbx.files.makeDir(scratch("plain.txt"))).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("renames, creating the destination's parents", async () => {
    writeFileSync(scratch("old.txt"), "moving");
    const moved = await sbx.files.rename(scratch("old.txt"), scratch("new", "place.txt"));
    expect(moved).toMatchObject({
      name: "place.txt",
      path: scratch("new", "place.txt"),
      type: FileType.FILE,
    });
    expect(readFileSync(scratch("new", "place.txt"), "utf8")).toBe("moving");
    await expect(sbx.files.rename(scratch("old.txt"), scratch("x.txt"))).rejects.toBeInstanceOf(
      FileNotFoundError,
    );
  });

  it("removes files and whole trees, and tolerates missing paths", async () => {
    mkdirSync(scratch("gone", "sub"), { recursive: true });
    writeFileSync(scratch("gone", "sub", "f"), "");
    await sbx.files.remove(scratch("gone"));
    expect(await sbx.files.exists(scratch("gone"))).toBe(false);
    await sbx.files.remove(scratch("never-there"));
  });

  it("maps bad input to the SDK's typed errors", async () => {
    mkdirSync(scratch("a-dir"), { recursive: true });
    writeFileSync(scratch("a-file"), "");
    await expect(sbx.files.read(scratch("nope.txt"))).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(sbx.files.read(scratch("a-dir"))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sbx.files.write(scratch("a-dir"), "x")).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sbx.files.write(scratch("a-file", "child.txt"), "x")).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sbx.files.list(scratch("a-file"))).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(sbx.files.list(scratch("nope"))).rejects.toBeInstanceOf(FileNotFoundError);
    await expect(sbx.files.getInfo("~someone/x")).rejects.toBeInstanceOf(InvalidArgumentError);
  });

  it("acts as the request's user: relative paths from its home, files owned by it", async () => {
    const name = `wrenn-envd-test-${process.pid}`;
    try {
      const info = await sbx.files.write(`${name}/owned.txt`, "mine", { user: "user" });
      expect(info.path).toBe(join(user.home, name, "owned.txt"));
      for (const p of [join(user.home, name), join(user.home, name, "owned.txt")]) {
        const st = lstatSync(p);
        expect([st.uid, st.gid]).toEqual([user.uid, user.gid]);
      }
      expect(await sbx.files.read(`~/${name}/owned.txt`, { user: "user" })).toBe("mine");

      await sbx.files.makeDir(`${name}/made`, { user: "user" });
      expect(lstatSync(join(user.home, name, "made")).uid).toBe(user.uid);
      const listed = await sbx.files.list(name, { user: "user" });
      expect(listed.find((e) => e.name === "owned.txt")).toMatchObject({ owner: "user" });

      // Writing as root elsewhere stays root's.
      await sbx.files.write(scratch("root.txt"), "r", { user: "root" });
      expect(lstatSync(scratch("root.txt")).uid).toBe(0);
    } finally {
      rmSync(join(user.home, name), { recursive: true, force: true });
    }
  });

  it("refuses unknown users", async () => {
    await expect(sbx.files.list(fx.workDir, { user: "no-such-user-xyz" })).rejects.toThrow(
      /invalid username/,
    );
    await expect(sbx.files.read(scratch("text.txt"), { user: "no-such-user-xyz" })).rejects.toThrow(
      /unknown user/,
    );
  });
});
