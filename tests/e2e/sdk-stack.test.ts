import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type ApiClient, isWrennApiError, Sandbox, Snapshot, WrennApiError } from "@wrenn/sdk";
import { beforeAll, describe, expect, it } from "vitest";
import { useSdkStack, VM_STEP_MS } from "./sdk-stack-fixture.js";

const run = promisify(execFile);
const SDK_DIR = join(import.meta.dirname, "../../packages/sdk");
/** tsx by path: the examples run from a temporary directory without node_modules of its own. */
const TSX_LOADER = join(import.meta.dirname, "../../node_modules/tsx/dist/loader.mjs");

/** The ```ts blocks of the SDK's README, in order. */
function readmeExamples(): string[] {
  const readme = readFileSync(join(SDK_DIR, "README.md"), "utf8");
  return [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
}

/**
 * The SDK through the whole stack: a real control plane (PGlite), one real host agent, real
 * QEMU VMs. One sandbox carries most steps so boots stay few. (The CLI: cli-stack.test.ts.)
 */
describe("SDK through the full stack", () => {
  const ctx = useSdkStack();
  let sandbox: Sandbox;
  let client: ApiClient;
  let env: Record<string, string>;
  beforeAll(() => {
    ({ client, env } = ctx);
  });

  it(
    "creates a sandbox",
    async () => {
      sandbox = await Sandbox.create({
        client,
        memoryMiB: 512,
        envs: { WHO: "sdk" },
        metadata: { suite: "sdk-stack" },
      });
      expect(sandbox.info).toMatchObject({
        state: "running",
        memoryMiB: 512,
        metadata: { suite: "sdk-stack" },
      });
    },
    VM_STEP_MS,
  );

  it(
    "runs commands: exit codes, env, cwd, user, stdin, bytes, timeout",
    async () => {
      const res = await sandbox.commands.run("echo $WHO; echo oops >&2; exit 3");
      expect(res).toMatchObject({ exitCode: 3, stdout: "sdk\n", stderr: "oops\n", error: "exit status 3" });
      const ctx = await sandbox.commands.run("pwd; whoami; echo $X", {
        cwd: "/tmp",
        user: "root",
        envs: { X: "1" },
      });
      expect(ctx).toMatchObject({ exitCode: 0, stdout: "/tmp\nroot\n1\n", error: null });
      expect((await sandbox.commands.run("cat", { stdin: "piped in" })).stdout).toBe("piped in");
      const binIn = await sandbox.commands.run("od -An -tx1", { stdin: new Uint8Array([0xff, 0x00, 0x41]) });
      expect(binIn.stdout.trim()).toBe("ff 00 41");
      const bytes = await sandbox.commands.run("printf '\\377\\376'");
      expect([...bytes.stdoutBytes]).toEqual([0xff, 0xfe]);
      const slow = await sandbox.commands.run("sleep 30", { timeoutMs: 1000 });
      expect(slow.error).toMatch(/timed out/);
    },
    VM_STEP_MS,
  );

  it(
    "streams output to callbacks as it is written, with stdin",
    async () => {
      const chunks: { data: string; at: number }[] = [];
      const errs: string[] = [];
      const res = await sandbox.commands.run("echo first; sleep 2; echo second; echo e >&2; cat", {
        onStdout: (data) => chunks.push({ data, at: Date.now() }),
        onStderr: (d) => errs.push(d),
        stdin: "from stdin",
      });
      const done = Date.now();
      expect(res).toMatchObject({ exitCode: 0, stdout: "first\nsecond\nfrom stdin", stderr: "e\n" });
      expect(chunks.map((c) => c.data).join("")).toBe(res.stdout);
      expect(errs.join("")).toBe("e\n");
      // The first line arrived while the command was still sleeping.
      expect(done - (chunks[0]?.at ?? done)).toBeGreaterThan(1000);
    },
    VM_STEP_MS,
  );

  it(
    "runs background commands: stdin, wait, kill; detached processes: list and kill by tag",
    async () => {
      const reader = await sandbox.commands.run("read line; echo got $line; exit 5", { background: true });
      expect(reader.pid).toBeGreaterThan(0);
      reader.sendStdin("hello\n");
      expect(await reader.wait()).toMatchObject({ exitCode: 5, stdout: "got hello\n" });

      const sleeper = await sandbox.commands.run("sleep 600", { background: true });
      sleeper.kill();
      const killed = await sleeper.wait();
      expect(killed.exitCode).not.toBe(0);

      const detached = await sandbox.commands.start("sleep 600", { tag: "sleeper" });
      expect(await sandbox.commands.list()).toContainEqual(
        expect.objectContaining({ pid: detached.pid, tag: "sleeper" }),
      );
      await sandbox.commands.kill("sleeper");
      await expect
        .poll(async () => (await sandbox.commands.list()).map((p) => p.pid), { timeout: 15_000 })
        .not.toContain(detached.pid);
    },
    VM_STEP_MS,
  );

  it(
    "opens a terminal: input, output, exit code",
    async () => {
      let output = "";
      const pty = await sandbox.pty.create({
        cols: 100,
        rows: 30,
        onData: (d) => (output += Buffer.from(d).toString()),
      });
      expect(pty.pid).toBeGreaterThan(0);
      pty.sendInput("echo $((6*7)); stty size\n");
      await expect.poll(() => output, { timeout: 15_000 }).toMatch(/42\r?\n30 100/);
      pty.resize({ cols: 120, rows: 40 });
      pty.sendInput("stty size; exit 3\n");
      expect(await pty.wait()).toMatchObject({ exitCode: 3 });
      expect(output).toMatch(/40 120/);
    },
    VM_STEP_MS,
  );

  it(
    "writes and reads files as text, bytes and streams; lists, makes and removes directories",
    async () => {
      expect(await sandbox.files.write("/home/user/hello.txt", "hi ✓\n")).toEqual({
        path: "/home/user/hello.txt",
        size: Buffer.byteLength("hi ✓\n"),
      });
      expect(await sandbox.files.read("/home/user/hello.txt")).toBe("hi ✓\n");

      const payload = new Uint8Array(300_000).map((_, i) => (i * 7) % 256);
      await sandbox.files.write("/home/user/data.bin", payload);
      expect(
        Buffer.from(await sandbox.files.read("/home/user/data.bin", { format: "bytes" })).equals(payload),
      ).toBe(true);
      const streamed = new Blob([payload, payload]).stream();
      expect((await sandbox.files.write("/home/user/twice.bin", streamed)).size).toBe(600_000);
      const readStream = await sandbox.files.read("/home/user/twice.bin", { format: "stream" });
      let total = 0;
      for await (const chunk of readStream) total += chunk.length;
      expect(total).toBe(600_000);

      expect(await sandbox.files.makeDir("/home/user/a/b")).toBe(true);
      expect(await sandbox.files.makeDir("/home/user/a/b")).toBe(false);
      const entries = await sandbox.files.list("/home/user");
      expect(entries).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ name: "hello.txt", type: "file", size: Buffer.byteLength("hi ✓\n") }),
          expect.objectContaining({ name: "a", type: "directory" }),
        ]),
      );
      await sandbox.files.remove("/home/user/a");
      expect((await sandbox.files.list("/home/user")).map((e) => e.name)).not.toContain("a");
      await expect(sandbox.files.read("/home/user/none")).rejects.toMatchObject({
        code: "not_found",
        status: 404,
      });
    },
    VM_STEP_MS,
  );

  it(
    "lists, connects, sets the timeout and reads metrics",
    async () => {
      const listed = await Sandbox.list({ client, metadata: { suite: "sdk-stack" } });
      expect(listed.map((s) => s.sandboxId)).toEqual([sandbox.sandboxId]);
      const again = await Sandbox.connect(sandbox.sandboxId, { client });
      expect(again.info.state).toBe("running");
      const info = await sandbox.setTimeout(900);
      expect(info.timeoutSec).toBe(900);
      expect(info.expiresAt?.getTime()).toBeGreaterThan(Date.now() + 800_000);
      expect((await sandbox.getCurrentMetrics()).cpuCount).toBeGreaterThan(0);
    },
    VM_STEP_MS,
  );

  it(
    "pauses (commands refused with conflict) and resumes with memory intact",
    async () => {
      await sandbox.commands.run("echo in-memory > /dev/shm/marker");
      expect((await sandbox.pause()).state).toBe("paused");
      const refused = await sandbox.commands.run("true").catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(WrennApiError);
      expect(refused).toMatchObject({ code: "conflict", status: 409 });
      expect((await sandbox.resume()).state).toBe("running");
      expect((await sandbox.commands.run("cat /dev/shm/marker /home/user/hello.txt")).stdout).toBe(
        "in-memory\nhi ✓\n",
      );
    },
    VM_STEP_MS,
  );

  it(
    "snapshots the sandbox and creates a sandbox from the snapshot with its memory and disk",
    async () => {
      const snap = await Snapshot.create(sandbox, "sdk-snap");
      expect(snap).toMatchObject({ name: "sdk-snap", kind: "snapshot", sourceSandboxId: sandbox.sandboxId });
      expect((await Snapshot.list({ client })).map((s) => s.name)).toContain("sdk-snap");
      expect(await sandbox.isRunning()).toBe(true);

      const child = await Sandbox.create({ client, snapshot: "sdk-snap" });
      try {
        expect(child.info.state).toBe("running");
        expect(child.info.snapshotId).not.toBeNull();
        expect(child.sandboxId).not.toBe(sandbox.sandboxId);
        expect((await child.commands.run("cat /dev/shm/marker /home/user/hello.txt")).stdout).toBe(
          "in-memory\nhi ✓\n",
        );
        // Its own disk: a write in the child is not seen by the source.
        await child.files.write("/home/user/child-only.txt", "child");
        expect((await sandbox.commands.run("test -e /home/user/child-only.txt; echo $?")).stdout).toBe("1\n");
      } finally {
        await child.kill();
      }
      expect((await child.getInfo()).state).toBe("stopped");
      // The source now runs on top of the snapshot's disk: deleting needs force (files go when it does).
      const inUse = await Snapshot.delete("sdk-snap", { client }).catch((e: unknown) => e);
      expect(inUse).toMatchObject({ name: "WrennApiError", code: "failed_precondition", status: 412 });
      expect((inUse as Error).message).toMatch(
        new RegExp(`in use by 1 sandbox\\(es\\): ${sandbox.sandboxId}`),
      );
      await Snapshot.delete("sdk-snap", { client, force: true });
      expect((await Snapshot.list({ client })).map((s) => s.name)).not.toContain("sdk-snap");
    },
    VM_STEP_MS,
  );

  it(
    "forks the running sandbox: the fork has its memory, the source keeps running",
    async () => {
      const [fork] = await sandbox.fork(1, { metadata: { forked: "yes" } });
      if (!fork) throw new Error("no fork returned");
      try {
        expect(fork.info).toMatchObject({ state: "running", metadata: { forked: "yes" } });
        expect((await fork.commands.run("cat /dev/shm/marker")).stdout).toBe("in-memory\n");
        expect(await sandbox.isRunning()).toBe(true);
      } finally {
        await fork.kill();
      }
    },
    VM_STEP_MS,
  );

  it(
    "runs the README's examples against this stack",
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wrenn-readme-"));
      try {
        // The examples import "@wrenn/sdk" as a user's code would.
        mkdirSync(join(dir, "node_modules/@wrenn"), { recursive: true });
        writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
        symlinkSync(SDK_DIR, join(dir, "node_modules/@wrenn/sdk"));
        const outputs: string[] = [];
        for (const [i, code] of readmeExamples().entries()) {
          const file = join(dir, `example-${i}.ts`);
          writeFileSync(file, code);
          const { stdout } = await run(process.execPath, ["--import", TSX_LOADER, file], {
            env: { ...process.env, ...env },
            cwd: dir,
            timeout: 300_000,
          });
          outputs.push(stdout);
        }
        expect(outputs).toHaveLength(5);
        expect(outputs[0]).toMatch(/^exit 0: hello from \S+\nwritten by the SDK\ntrue\n$/);
        expect(outputs[1]).toBe("warm\n");
        expect(outputs[2]).toBe("not_found 404\n");
        expect(outputs[3]).toBe("hi wrenn\nexit 2\n");
        expect(outputs[4]).toBe("2 steps: hi from the template\n");
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    3 * VM_STEP_MS,
  );

  it(
    "kills the sandbox: stopped, and gone from the running list",
    async () => {
      await sandbox.kill();
      expect((await sandbox.getInfo()).state).toBe("stopped");
      expect(await Sandbox.list({ client, state: ["running", "paused"] })).toEqual([]);
      const gone = await sandbox.commands.run("true").catch((e: unknown) => e);
      expect(isWrennApiError(gone, "conflict")).toBe(true);
    },
    VM_STEP_MS,
  );
});
