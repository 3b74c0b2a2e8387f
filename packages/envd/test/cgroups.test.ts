import { spawn } from "node:child_process";
import { once } from "node:events";
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, createSilentLogger } from "@wrenn/shared";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createCgroupManager, isCgroup2Mount, parseOwnCgroup } from "../src/cgroups/create-cgroup-manager.js";
import { startEnvd } from "./envd-fixture.js";

const MiB = 1024 * 1024;
const GROUPS = ["ptys", "socats", "user"];
/** The interface files the kernel puts in a child group once cpu, io and memory are delegated. */
const CHILD_FILES = [
  "cgroup.procs",
  "cpu.weight",
  "io.weight",
  "memory.high",
  "memory.max",
  "memory.min",
  "memory.low",
];

/**
 * A directory laid out like a cgroup2 mount. Real cgroupfs creates a child's interface files
 * on mkdir; a plain directory cannot, so the children are laid out beforehand.
 */
function fakeCgroup2(root: string, opts: { subtreeControl?: string; childFiles?: string[] } = {}): void {
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, "cgroup.controllers"), "cpuset cpu io memory hugetlb pids\n");
  writeFileSync(join(root, "cgroup.subtree_control"), opts.subtreeControl ?? "");
  for (const group of GROUPS) {
    mkdirSync(join(root, group));
    for (const file of opts.childFiles ?? CHILD_FILES) writeFileSync(join(root, group, file), "");
  }
}

const read = (...parts: string[]) => readFileSync(join(...parts), "utf8");

describe("cgroup detection", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-cgroup-test-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("reads envd's own cgroup from the unified line of /proc/self/cgroup", () => {
    expect(parseOwnCgroup("0::/\n")).toBe("/");
    expect(parseOwnCgroup("9:name=systemd:/\n4:memory:/x/y\n0::/system.slice/envd.service\n")).toBe(
      "/system.slice/envd.service",
    );
    expect(parseOwnCgroup("4:memory:/x\n")).toBeUndefined();
  });

  it("recognises a cgroup2 root by its cgroup.controllers", () => {
    expect(isCgroup2Mount(dir)).toBe(false);
    writeFileSync(join(dir, "cgroup.controllers"), "cpu memory\n");
    expect(isCgroup2Mount(dir)).toBe(true);
  });

  it("falls back to a no-op manager where the mount is not cgroup2, creating nothing", async () => {
    const manager = await createCgroupManager(createSilentLogger(), { mountPath: dir, ownCgroup: "/" });
    expect(manager.description).toMatch(/^cgroups not managed: no cgroup v2 hierarchy at /);
    await manager.place(process.pid, "user");
    expect(() => readFileSync(join(dir, "user", "cgroup.procs"))).toThrow();
  });

  it.skipIf(isCgroup2Mount("/sys/fs/cgroup"))("is a no-op on this cgroup v1 (hybrid) host", async () => {
    const manager = await createCgroupManager(createSilentLogger());
    expect(manager.description).toContain("cgroup v1 or hybrid host");
    await expect(manager.place(process.pid, "socat")).resolves.toBeUndefined();
  });

  it("envd logs the manager's description once at start", async () => {
    const lines: string[] = [];
    const envd = await startEnvd({}, createLogger({ level: "debug", write: (l) => lines.push(l) }));
    await envd.close();
    const records = lines.map((l) => JSON.parse(l) as { msg: string; manager?: string });
    const cgroupRecords = records.filter((r) => r.msg === "cgroups");
    expect(cgroupRecords).toHaveLength(1);
    expect(cgroupRecords[0]?.manager).toMatch(/^cgroup/);
  });
});

describe("cgroup v2 manager (on a directory laid out like cgroup2)", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-cgroup-test-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("enables the delegated controllers and writes E2B's weights and limits", async () => {
    fakeCgroup2(dir, { subtreeControl: "cpu\n" });
    const manager = await createCgroupManager(createSilentLogger(), {
      mountPath: dir,
      ownCgroup: "/",
      memTotalBytes: 2048 * MiB,
    });
    expect(manager.description).toBe(
      `cgroup v2 at ${dir}: ptys, socats, user (controllers: cpu, memory, io, pids)`,
    );
    // cpu was already on; cpuset and hugetlb are not delegated; one controller per write.
    expect(read(dir, "cgroup.subtree_control")).toBe("cpu\n+memory\n+io\n+pids\n");

    // 1/8 of 2 GiB is above the 128 MiB cap, so 128 MiB is kept back.
    const limit = String(2048 * MiB - 128 * MiB);
    expect(read(dir, "ptys", "cpu.weight")).toBe("200");
    expect(read(dir, "ptys", "io.weight")).toBe("default 50");
    expect(read(dir, "ptys", "memory.high")).toBe(limit);
    expect(read(dir, "ptys", "memory.max")).toBe(limit);
    expect(read(dir, "socats", "cpu.weight")).toBe("150");
    expect(read(dir, "socats", "memory.min")).toBe(String(5 * MiB));
    expect(read(dir, "socats", "memory.low")).toBe(String(8 * MiB));
    expect(read(dir, "socats", "memory.high")).toBe("");
    expect(read(dir, "user", "cpu.weight")).toBe("50");
    expect(read(dir, "user", "io.weight")).toBe("default 10");
    expect(read(dir, "user", "memory.high")).toBe(limit);

    await manager.place(4242, "user");
    await manager.place(4343, "user");
    await manager.place(77, "socat");
    await manager.place(88, "pty");
    expect(read(dir, "user", "cgroup.procs")).toBe("4242\n4343\n");
    expect(read(dir, "socats", "cgroup.procs")).toBe("77\n");
    expect(read(dir, "ptys", "cgroup.procs")).toBe("88\n");
  });

  it("keeps 1/8 of a small VM's memory back", async () => {
    fakeCgroup2(dir);
    await createCgroupManager(createSilentLogger(), {
      mountPath: dir,
      ownCgroup: "/",
      memTotalBytes: 512 * MiB,
    });
    expect(read(dir, "user", "memory.max")).toBe(String(512 * MiB - 64 * MiB));
  });

  it("creates the groups below envd's own cgroup", async () => {
    writeFileSync(join(dir, "cgroup.controllers"), "cpu memory\n");
    const own = join(dir, "system.slice", "envd.service");
    fakeCgroup2(own);
    const manager = await createCgroupManager(createSilentLogger(), {
      mountPath: dir,
      ownCgroup: "/system.slice/envd.service",
      memTotalBytes: 1024 * MiB,
    });
    expect(manager.description).toContain(`cgroup v2 at ${own}:`);
    await manager.place(5, "pty");
    expect(read(own, "ptys", "cgroup.procs")).toBe("5\n");
  });

  it("skips properties whose controller is not there and creates missing groups", async () => {
    fakeCgroup2(dir, { childFiles: ["cgroup.procs", "cpu.weight"] });
    rmSync(join(dir, "user"), { recursive: true });
    const manager = await createCgroupManager(createSilentLogger(), { mountPath: dir, ownCgroup: "/" });
    expect(read(dir, "ptys", "cpu.weight")).toBe("200");
    // Never created as plain files: a missing interface file means "not available".
    expect(() => read(dir, "ptys", "memory.max")).toThrow();
    expect(() => read(dir, "user", "cpu.weight")).toThrow();
    // A group without cgroup.procs cannot take a process; place() says so.
    await expect(manager.place(9, "user")).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("falls back to no-op when a group cannot be created", async () => {
    fakeCgroup2(dir);
    rmSync(join(dir, "socats"), { recursive: true });
    writeFileSync(join(dir, "socats"), "not a directory");
    const manager = await createCgroupManager(createSilentLogger(), { mountPath: dir, ownCgroup: "/" });
    expect(manager.description).toMatch(/^cgroups not managed: cgroup v2 setup failed at /);
    await expect(manager.place(1, "socat")).resolves.toBeUndefined();
  });
});

/** The cgroup2 mount of a hybrid host, usable for a real-kernel check where it is writable. */
const HYBRID_UNIFIED = "/sys/fs/cgroup/unified";
function writableCgroup2(path: string): boolean {
  try {
    accessSync(join(path, "cgroup.procs"), constants.W_OK);
    return isCgroup2Mount(path);
  } catch {
    return false;
  }
}

describe.skipIf(!writableCgroup2(HYBRID_UNIFIED))(
  "cgroup v2 manager on this host's real cgroup2 mount",
  () => {
    const own = `/wrenn-envd-test-${process.pid}`;
    const ownPath = join(HYBRID_UNIFIED, own);
    beforeEach(() => mkdirSync(ownPath));
    afterEach(() => {
      for (const group of GROUPS) if (existsSync(join(ownPath, group))) rmdirSync(join(ownPath, group));
      rmdirSync(ownPath);
      expect(existsSync(ownPath)).toBe(false);
    });

    it("creates the groups in cgroupfs and moves a live process into one", async () => {
      const manager = await createCgroupManager(createSilentLogger(), {
        mountPath: HYBRID_UNIFIED,
        ownCgroup: own,
      });
      // This hybrid host delegates no controllers to cgroup2; the groups still hold processes.
      expect(manager.description).toBe(`cgroup v2 at ${ownPath}: ptys, socats, user (controllers: none)`);
      const sleeper = spawn("sleep", ["30"], { stdio: "ignore" });
      await once(sleeper, "spawn");
      try {
        await manager.place(sleeper.pid as number, "user");
        expect(readFileSync(`/proc/${sleeper.pid}/cgroup`, "utf8")).toContain(`0::${own}/user\n`);
      } finally {
        sleeper.kill("SIGKILL");
        await once(sleeper, "exit");
      }
      // The process is gone (ESRCH): nothing to place, not an error.
      await expect(manager.place(sleeper.pid as number, "pty")).resolves.toBeUndefined();
    });
  },
);
