import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { InvalidArgumentError, type Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

/** The raw user.e2b.* attributes of a file, read with perl (no envd code involved). */
function rawXattrs(path: string): string[] {
  const script =
    'my $p = $ARGV[0]; my $b = "\\0" x 4096; my $n = syscall(194, $p, $b, 4096); print join("\\n", grep { /^user\\.e2b\\./ } split(/\\0/, substr($b, 0, $n)));';
  const out = spawnSync("perl", ["-e", script, path], { encoding: "utf8" });
  return out.stdout
    .split("\n")
    .filter((l) => l !== "")
    .sort();
}

describe("file metadata through the stock e2b SDK", () => {
  let fx: EnvdFixture;
  let sbx: Sandbox;
  const scratch = (...parts: string[]) => join(fx.workDir, ...parts);

  beforeAll(async () => {
    fx = await startEnvd();
    sbx = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  it("stores metadata as user.e2b.* xattrs, returned by write, getInfo, list and watch", async () => {
    const path = scratch("meta.txt");
    const written = await sbx.files.write(path, "hello", { metadata: { Owner: "alice", stage: "raw" } });
    // Header names are case-insensitive, so keys come back lowercased.
    expect(written.metadata).toEqual({ owner: "alice", stage: "raw" });
    expect(rawXattrs(path)).toEqual(["user.e2b.owner", "user.e2b.stage"]);
    expect((await sbx.files.getInfo(path)).metadata).toEqual({ owner: "alice", stage: "raw" });

    await sbx.files.write(scratch("plain.txt"), "no metadata");
    const listed = await sbx.files.list(fx.workDir);
    expect(listed.find((e) => e.name === "meta.txt")?.metadata).toEqual({ owner: "alice", stage: "raw" });
    expect(listed.find((e) => e.name === "plain.txt")?.metadata).toBeUndefined();

    const events: Array<{ name: string; metadata?: Record<string, string> }> = [];
    const handle = await sbx.files.watchDir(
      fx.workDir,
      (ev) => {
        if (ev.entry) events.push({ name: ev.name, metadata: ev.entry.metadata });
      },
      { includeEntry: true },
    );
    await sbx.files.write(scratch("watched.txt"), "w", { metadata: { k: "v" } });
    await expect.poll(() => events.some((e) => e.name === "watched.txt" && e.metadata?.k === "v")).toBe(true);
    await handle.stop();
  });

  it("keeps metadata through a rename and clears it on an overwrite without metadata", async () => {
    const from = scratch("before.txt");
    const to = scratch("sub", "after.txt");
    await sbx.files.write(from, "x", { metadata: { a: "1", b: "2" } });
    const moved = await sbx.files.rename(from, to);
    expect(moved.metadata).toEqual({ a: "1", b: "2" });
    expect((await sbx.files.getInfo(to)).metadata).toEqual({ a: "1", b: "2" });

    // An overwrite with metadata replaces it whole: b goes, c arrives.
    await sbx.files.write(to, "y", { metadata: { a: "9", c: "3" } });
    expect((await sbx.files.getInfo(to)).metadata).toEqual({ a: "9", c: "3" });

    await sbx.files.write(to, "z");
    expect((await sbx.files.getInfo(to)).metadata).toBeUndefined();
    expect(rawXattrs(to)).toEqual([]);
  });

  it("applies one upload's metadata to every file of a multi-file write, and empty values", async () => {
    await sbx.files.write(
      [
        { path: scratch("m", "a.txt"), data: "A" },
        { path: scratch("m", "b.txt"), data: "B" },
      ],
      { metadata: { tag: "both", empty: "" } },
    );
    for (const name of ["a.txt", "b.txt"]) {
      expect((await sbx.files.getInfo(scratch("m", name))).metadata).toEqual({ tag: "both", empty: "" });
    }
  });

  it("refuses metadata over the size limits with 400 (InvalidArgumentError)", async () => {
    await expect(
      sbx.files.write(scratch("big.txt"), "x", { metadata: { k: "v".repeat(5000) } }),
    ).rejects.toThrow(InvalidArgumentError);
    await expect(
      sbx.files.write(scratch("big.txt"), "x", { metadata: { ["k".repeat(250)]: "v" } }),
    ).rejects.toThrow(InvalidArgumentError);
  });

  it("lists a large directory without metadata quickly", async () => {
    const files = Array.from({ length: 500 }, (_, i) => ({ path: scratch("many", `f${i}.txt`), data: "." }));
    await sbx.files.write(files);
    const t0 = performance.now();
    const listed = await sbx.files.list(scratch("many"));
    const ms = performance.now() - t0;
    expect(listed).toHaveLength(500);
    expect(listed.every((e) => e.metadata === undefined)).toBe(true);
    console.log(`list of 500 entries without metadata: ${ms.toFixed(0)} ms`);
  });
});
