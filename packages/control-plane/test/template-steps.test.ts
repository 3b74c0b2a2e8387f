import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import type { BuildStep } from "@wrenn/api";
import { afterEach, describe, expect, it } from "vitest";
import { E2bBuildStartSchema, e2bBuildSpec } from "../src/e2b/e2b-build-spec.js";
import { contexts, copyCommand, resolveDest } from "../src/templates/build-context.js";
import { baseKey, firstStepToRun, stepKeys } from "../src/templates/step-keys.js";

const steps: BuildStep[] = [
  { type: "run", command: "apt-get install -y jq", user: "root" },
  { type: "env", vars: { A: "1", B: "2" } },
  { type: "workdir", path: "/app" },
  { type: "run", command: "make" },
];

describe("step cache keys", () => {
  const parent = baseKey({ image: "base", vcpus: 1, memoryMiB: 512 });

  it("change from the changed step on, and nowhere before", () => {
    const before = stepKeys(parent, steps);
    const changed = stepKeys(parent, [
      ...steps.slice(0, 2),
      { type: "workdir", path: "/srv" },
      steps[3] as BuildStep,
    ]);
    expect(changed.slice(0, 2)).toEqual(before.slice(0, 2));
    expect(changed[2]).not.toBe(before[2]);
    expect(changed[3]).not.toBe(before[3]);
  });

  it("depend on the parent, but not on the order env vars were written in", () => {
    expect(stepKeys(baseKey({ image: "base", vcpus: 2, memoryMiB: 512 }), steps)[0]).not.toBe(
      stepKeys(parent, steps)[0],
    );
    const reordered = steps.map((s) =>
      s.type === "env" ? { type: "env" as const, vars: { B: "2", A: "1" } } : s,
    );
    expect(stepKeys(parent, reordered)).toEqual(stepKeys(parent, steps));
  });

  it("resume after the deepest cached step that changed the VM", () => {
    const keys = stepKeys(parent, steps);
    const cached = new Set([keys[0], keys[1], keys[2]]);
    expect(firstStepToRun(steps, keys, (k) => cached.has(k), false)).toEqual({ start: 3, fromKey: keys[2] });
    // An env step is not a cache point: with only it and step 1 cached, step 1 is where to resume.
    const envOnly = new Set([keys[0], keys[1]]);
    expect(firstStepToRun(steps, keys, (k) => envOnly.has(k), false)).toEqual({ start: 1, fromKey: keys[0] });
    expect(firstStepToRun(steps, keys, () => true, true)).toEqual({ start: 0, fromKey: null });
  });
});

describe("build context", () => {
  it("tracks env, user and workdir step by step (relative paths from the previous ones)", () => {
    const { before, final } = contexts([
      { type: "env", vars: { A: "1" } },
      { type: "workdir", path: "srv" },
      { type: "workdir", path: "app" },
      { type: "user", name: "root" },
    ]);
    expect(before[0]).toEqual({ env: {}, user: "user", workdir: null });
    expect(final).toEqual({ env: { A: "1" }, user: "root", workdir: "/srv/app" });
    expect(resolveDest(before[0] as never, "files/")).toBe("/home/user/files/");
    expect(resolveDest(final, "x.txt")).toBe("/srv/app/x.txt");
  });
});

describe("copy step placement (run by a real shell on real files)", () => {
  let dir = "";
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function archive(): string {
    dir = mkdtempSync(join(tmpdir(), "wrenn-copy-"));
    mkdirSync(join(dir, "ctx/app/sub"), { recursive: true });
    writeFileSync(join(dir, "ctx/app/a.txt"), "A");
    writeFileSync(join(dir, "ctx/app/sub/b.txt"), "B");
    writeFileSync(join(dir, "ctx/one.txt"), "ONE");
    execFileSync("tar", ["-czf", join(dir, "files.tar.gz"), "-C", join(dir, "ctx"), "app", "one.txt"]);
    return join(dir, "files.tar.gz");
  }
  const owner = userInfo().username;
  const copy = (src: string, dest: string, mode?: string) => {
    const script = copyCommand({ archive: join(dir, "keep.tar.gz"), src, dest, owner, mode });
    execFileSync("cp", [join(dir, "files.tar.gz"), join(dir, "keep.tar.gz")]);
    execFileSync("bash", ["-c", script]);
  };

  it("merges a directory's contents into dest, places files into dir/ or as the named file", () => {
    archive();
    writeFileSync(join(dir, "existing.txt"), "");
    copy("app", join(dir, "out/"));
    expect(readFileSync(join(dir, "out/a.txt"), "utf8")).toBe("A");
    expect(readFileSync(join(dir, "out/sub/b.txt"), "utf8")).toBe("B");
    copy("one.txt", join(dir, "into/"));
    expect(readFileSync(join(dir, "into/one.txt"), "utf8")).toBe("ONE");
    copy("one.txt", join(dir, "renamed.txt"), "0600");
    expect(readFileSync(join(dir, "renamed.txt"), "utf8")).toBe("ONE");
    expect(statSync(join(dir, "renamed.txt")).mode & 0o777).toBe(0o600);
  });

  it("fails with a clear message when src is not in the archive", () => {
    archive();
    expect(() => copy("missing", join(dir, "x"))).toThrow(/missing is not in the uploaded files/);
  });
});

describe("E2B build bodies", () => {
  const parse = (body: unknown) => e2bBuildSpec(E2bBuildStartSchema.parse(body));

  it("translate the SDK's steps (extra keys ignored, empty args meaning not given)", () => {
    const spec = parse({
      fromImage: "e2bdev/base",
      force: false,
      startCmd: "node server.js",
      readyCmd: "curl -s localhost:3000",
      steps: [
        { type: "RUN", args: ["apt-get update", "root"], force: false },
        {
          type: "COPY",
          args: ["app", "/srv/", "", ""],
          filesHash: "a".repeat(64),
          forceUpload: false,
          gzip: true,
        },
        { type: "ENV", args: ["A", "1", "B", "two words"] },
        { type: "WORKDIR", args: ["/srv"] },
        { type: "USER", args: ["user"] },
      ],
    });
    expect(spec).toEqual({
      from: { image: "base" },
      force: false,
      start_cmd: "node server.js",
      ready_cmd: "curl -s localhost:3000",
      steps: [
        { type: "run", command: "apt-get update", user: "root" },
        { type: "copy", files_hash: "a".repeat(64), src: "app", dest: "/srv/" },
        { type: "env", vars: { A: "1", B: "two words" } },
        { type: "workdir", path: "/srv" },
        { type: "user", name: "user" },
      ],
    });
    expect(
      parse({ fromTemplate: "web:v2", steps: [{ type: "RUN", args: ["x"], force: true }] }),
    ).toMatchObject({
      from: { template: "web:v2" },
      force: true,
    });
  });

  it("refuse a base the host cannot make, naming what is supported", () => {
    expect(() => parse({ fromImage: "ubuntu:latest", steps: [] })).toThrow(/fromBaseImage\(\).*fromTemplate/);
    expect(() => parse({ fromImage: "x", fromImageRegistry: { type: "aws" } })).toThrow(
      /registry images cannot be built here/,
    );
    expect(() => parse({ steps: [{ type: "ARG", args: [] }] })).toThrow(/ARG is not supported/);
  });
});
