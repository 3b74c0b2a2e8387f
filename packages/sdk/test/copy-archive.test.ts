import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { WrennCopySourceError } from "../src/errors.js";
import { copySourcePath, packCopySource } from "../src/node.js";

describe("packCopySource", () => {
  const root = mkdtempSync(join(tmpdir(), "wrenn-pack-"));
  const ctx = join(root, "ctx");
  mkdirSync(join(ctx, "app", "static"), { recursive: true });
  writeFileSync(join(ctx, "app", "hello.txt"), "hello\n");
  writeFileSync(join(ctx, "app", "static", "index.html"), "<p>hi</p>\n");
  writeFileSync(join(ctx, "single.conf"), "x=1\n");
  writeFileSync(join(root, "outside.txt"), "secret\n");
  symlinkSync(root, join(ctx, "up"));

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** Entries of an archive, listed by the system's tar. */
  const entries = (body: Uint8Array) =>
    execFileSync("tar", ["-tzf", "-"], { input: body, encoding: "utf8" }).trim().split("\n");

  it("packs a directory as a tar.gz keeping its path as the prefix, named by its sha256", async () => {
    const archive = await packCopySource("./app/", ctx);
    expect(archive.src).toBe("app");
    expect(archive.hash).toBe(createHash("sha256").update(archive.body).digest("hex"));
    expect(entries(archive.body)).toEqual(["app/", "app/hello.txt", "app/static/", "app/static/index.html"]);
    const out = join(root, "out");
    mkdirSync(out);
    execFileSync("tar", ["-xzf", "-", "-C", out], { input: archive.body });
    expect(execFileSync("cat", [join(out, "app", "static", "index.html")], { encoding: "utf8" })).toBe(
      "<p>hi</p>\n",
    );
    expect((await packCopySource("single.conf", ctx)).src).toBe("single.conf");
  });

  it("gives the same hash for the same content whatever the mtimes, another for other content", async () => {
    const first = await packCopySource("app", ctx);
    utimesSync(join(ctx, "app", "hello.txt"), new Date(2001, 1, 1), new Date(2001, 1, 1));
    expect((await packCopySource("app", ctx)).hash).toBe(first.hash);
    writeFileSync(join(ctx, "app", "hello.txt"), "hello again\n");
    expect((await packCopySource("app", ctx)).hash).not.toBe(first.hash);
  });

  it("refuses sources outside the context directory, the directory itself, or missing ones", async () => {
    for (const src of ["../outside.txt", "/etc/passwd", ".", "app/../..", "up/outside.txt", "nope"]) {
      await expect(copySourcePath(src, ctx), src).rejects.toBeInstanceOf(WrennCopySourceError);
    }
  });
});
