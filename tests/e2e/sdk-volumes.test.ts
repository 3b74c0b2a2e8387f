import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import {
  ApiClient,
  isWrennApiError,
  Sandbox,
  VolumeContent,
  type VolumeEntry,
  type VolumeInfo,
  Volumes,
  WrennApiError,
} from "@wrenn/sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runWrenn } from "./cli-runner.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { type Stack, startStack } from "./stack-fixture.js";

const run = promisify(execFile);
const SDK_DIR = join(import.meta.dirname, "../../packages/sdk");
const TSX_LOADER = join(import.meta.dirname, "../../node_modules/tsx/dist/loader.mjs");
/** This file's agent prefix, slots and NFS ports: unique on this machine. */
const PREFIX = "wsvl";
const VM_STEP_MS = 300_000;

/** A stream of `total` pseudo-random bytes in 1 MiB chunks, hashed as it is produced. */
function generatedStream(total: number, hash: ReturnType<typeof createHash>): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent >= total) return controller.close();
      const chunk = randomBytes(Math.min(1024 * 1024, total - sent));
      hash.update(chunk);
      sent += chunk.length;
      controller.enqueue(new Uint8Array(chunk));
    },
  });
}

async function streamDigest(stream: ReadableStream<Uint8Array>): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest("hex"), bytes };
}

/**
 * Volumes through `@wrenn/sdk` and the `wrenn` CLI against a real control plane and a real
 * agent serving volumes: the content operations need no VM; one sandbox (made by
 * `wrenn sandbox create --volume`) mounts a volume and reads what the SDK and the CLI wrote.
 */
describe("SDK and CLI: volumes", () => {
  let stack: Stack;
  let client: ApiClient;
  let env: Record<string, string>;
  const work = mkdtempSync(join(tmpdir(), "wrenn-sdk-volumes-"));

  beforeAll(async () => {
    stack = await startStack({
      agents: [
        {
          netNamePrefix: PREFIX,
          firstSlot: 2850,
          maxSlots: 2,
          volumes: true,
          nfsPort: 32369,
          nfsMountPort: 32368,
        },
      ],
    });
    client = new ApiClient({ apiUrl: stack.url, apiKey: stack.apiKey, timeoutMs: 120_000 });
    env = { WRENN_API_URL: stack.url, WRENN_API_KEY: stack.apiKey, WRENN_DIR: work };
  }, VM_STEP_MS);

  afterAll(async () => {
    if (stack) {
      const live = await Sandbox.list({ client, state: ["pending", "running", "paused", "error"] }).catch(
        () => [],
      );
      for (const s of live) await Sandbox.kill(s.sandboxId, { client }).catch(() => undefined);
      for (const v of await Volumes.list({ client }).catch(() => [] as VolumeInfo[])) {
        await Volumes.delete(v.volumeId, { client }).catch(() => undefined);
      }
      const dir = stack.agents[0]?.dataDir ?? "";
      await stack.close();
      expect(findHostLeftovers(dir, PREFIX)).toEqual(NO_LEFTOVERS);
    }
    rmSync(work, { recursive: true, force: true });
  }, VM_STEP_MS);

  it("creates, lists, gets and deletes volumes, each with its content token", async () => {
    const made = await Volumes.create({ name: "sdk-crud", sizeMiB: 32 }, { client });
    expect(made.info).toMatchObject({ name: "sdk-crud", sizeMiB: 32 });
    expect(made.volumeId).toMatch(/^vol-/);
    expect(made.token).toMatch(/^wvt_/);
    const got = await Volumes.get("sdk-crud", { client });
    expect(got.volumeId).toBe(made.volumeId);
    expect(got.token).toBe(made.token);
    expect((await Volumes.get(made.volumeId, { client })).name).toBe("sdk-crud");
    expect((await Volumes.list({ client })).map((v) => v.name)).toEqual(["sdk-crud"]);

    const dup = await Volumes.create({ name: "sdk-crud" }, { client }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(WrennApiError);
    expect((dup as WrennApiError).code).toBe("already_exists");

    await Volumes.delete("sdk-crud", { client });
    expect(await Volumes.list({ client })).toEqual([]);
    const gone = await Volumes.get("sdk-crud", { client }).catch((e: unknown) => e);
    expect(isWrennApiError(gone, "not_found")).toBe(true);
  });

  it("moves a volume's files over the content API: streams, force, owner and mode, errors", async () => {
    const vol = await Volumes.create({ name: "sdk-files" }, { client });
    expect(await vol.list("/")).toEqual([]);

    const written = await vol.writeFile("/hello.txt", "hello from the sdk\n");
    expect(written).toMatchObject({ path: "/hello.txt", type: "file", size: 19 });
    const again = await vol.writeFile("/hello.txt", "no force").catch((e: unknown) => e);
    expect(isWrennApiError(again, "already_exists")).toBe(true);
    expect((again as WrennApiError).status).toBe(409);
    expect(
      await vol.writeFile("/hello.txt", "hello again\n", { force: true, mode: 0o600, uid: 1234, gid: 1235 }),
    ).toMatchObject({ size: 12, mode: 0o600, uid: 1234, gid: 1235 });
    expect(await vol.readFile("/hello.txt")).toBe("hello again\n");
    expect(new TextDecoder().decode(await vol.readFile("/hello.txt", { format: "bytes" }))).toBe(
      "hello again\n",
    );

    const noParent = await vol.makeDir("/deep/er").catch((e: unknown) => e);
    expect(isWrennApiError(noParent, "not_found")).toBe(true);
    expect(await vol.makeDir("/deep/er", { force: true })).toMatchObject({
      type: "directory",
      path: "/deep/er",
    });
    expect((await vol.makeDir("/deep/er", { force: true })).type).toBe("directory");

    // 24 MiB up and down as streams: neither side holds the file whole.
    const upHash = createHash("sha256");
    const size = 24 * 1024 * 1024;
    const big = await vol.writeFile("/deep/er/big.bin", generatedStream(size, upHash), { timeoutMs: 0 });
    expect(big.size).toBe(size);
    const down = await streamDigest(
      await vol.readFile("/deep/er/big.bin", { format: "stream", timeoutMs: 0 }),
    );
    expect(down).toEqual({ sha256: upHash.digest("hex"), bytes: size });

    expect((await vol.list("/")).map((e) => e.name)).toEqual(["deep", "hello.txt"]);
    expect((await vol.list("/", { depth: 3 })).map((e: VolumeEntry) => e.path)).toEqual([
      "/deep",
      "/deep/er",
      "/deep/er/big.bin",
      "/hello.txt",
    ]);
    const st = await vol.stat("/deep/er/big.bin");
    expect(st).toMatchObject({ name: "big.bin", type: "file", size });
    expect(st.mtime).toBeInstanceOf(Date);
    expect(await vol.exists("/deep/er")).toBe(true);
    expect(await vol.exists("/nope")).toBe(false);
    expect((await vol.updateMetadata("/hello.txt", { mode: 0o640 })).mode).toBe(0o640);

    const missing = await vol.readFile("/nope.txt").catch((e: unknown) => e);
    expect(isWrennApiError(missing, "not_found")).toBe(true);
    expect((missing as WrennApiError).message).toMatch(/nope\.txt/);
    const outside = await vol.readFile("/../etc/passwd").catch((e: unknown) => e);
    expect(outside).toBeInstanceOf(WrennApiError);

    await vol.remove("/deep");
    expect(await vol.exists("/deep/er/big.bin")).toBe(false);

    // The token opens the files; a wrong one reads as a missing volume.
    const stranger = new VolumeContent({
      apiUrl: stack.url,
      volumeId: vol.volumeId,
      token: "wvt_not-the-token",
      timeoutMs: 10_000,
    });
    const refused = await stranger.readFile("/hello.txt").catch((e: unknown) => e);
    expect(isWrennApiError(refused, "not_found")).toBe(true);
    await Volumes.delete(vol.volumeId, { client });
  });

  it("runs the README's volume example against this stack", async () => {
    const readme = readFileSync(join(SDK_DIR, "README.md"), "utf8");
    const examples = [...readme.matchAll(/```ts volumes\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
    expect(examples).toHaveLength(1);
    const dir = mkdtempSync(join(tmpdir(), "wrenn-readme-vol-"));
    try {
      mkdirSync(join(dir, "node_modules/@wrenn"), { recursive: true });
      writeFileSync(join(dir, "package.json"), '{ "type": "module" }\n');
      symlinkSync(SDK_DIR, join(dir, "node_modules/@wrenn/sdk"));
      writeFileSync(join(dir, "example.ts"), examples[0] ?? "");
      const { stdout } = await run(process.execPath, ["--import", TSX_LOADER, join(dir, "example.ts")], {
        env: { ...process.env, ...env },
        cwd: dir,
        timeout: 120_000,
      });
      expect(stdout).toBe(
        "/reports /reports/2026 /reports/2026/today.txt\nwritten without a sandbox\nfalse\n",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    expect(await Volumes.list({ client })).toEqual([]);
  });

  it(
    "wrenn volume create|ls|put|get|files|mkdir|rm, and a sandbox mounting it with --volume",
    async () => {
      const created = await runWrenn(["volume", "create", "cli-data", "--size", "32", "--json"], env);
      expect(created.stderr).toBe("");
      expect(JSON.parse(created.stdout)).toMatchObject({ name: "cli-data", sizeMiB: 32 });
      const ls = await runWrenn(["volume", "ls"], env);
      expect(ls.stdout).toMatch(/^NAME\s+ID\s+SIZE\s+HOST\s+CREATED\ncli-data\s+vol-\S+\s+32MiB/);

      const local = join(work, "notes.txt");
      writeFileSync(local, "put by the cli\n");
      expect((await runWrenn(["volume", "mkdir", "cli-data", "/docs/a"], env)).stdout).toBe(
        "cli-data:/docs/a\n",
      );
      const put = await runWrenn(["volume", "put", "cli-data", local, "/docs/a/"], env);
      expect(put).toMatchObject({ code: 0, stdout: "15 bytes → cli-data:/docs/a/notes.txt\n" });
      const again = await runWrenn(["volume", "put", "cli-data", local, "/docs/a/notes.txt"], env);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/^error \[already_exists\]: .*force/);
      const forced = await runWrenn(["volume", "put", "cli-data", "-", "/docs/a/notes.txt", "--force"], env, {
        input: "replaced from stdin\n",
      });
      expect(forced.code).toBe(0);

      const cat = await runWrenn(["volume", "get", "cli-data", "/docs/a/notes.txt"], env);
      expect(cat).toMatchObject({ code: 0, stdout: "replaced from stdin\n" });
      const saved = join(work, "saved.txt");
      const got = await runWrenn(["volume", "get", "cli-data", "/docs/a/notes.txt", saved], env);
      expect(got.stdout).toBe(`cli-data:/docs/a/notes.txt → ${saved} (20 bytes)\n`);
      expect(readFileSync(saved, "utf8")).toBe("replaced from stdin\n");
      const missing = await runWrenn(["volume", "get", "cli-data", "/nope"], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^error \[not_found\]:/);

      const files = await runWrenn(["volume", "files", "cli-data", "--depth", "3", "--json"], env);
      expect((JSON.parse(files.stdout) as { path: string }[]).map((e) => e.path)).toEqual([
        "/docs",
        "/docs/a",
        "/docs/a/notes.txt",
      ]);
      const table = await runWrenn(["volume", "files", "cli-data", "/docs/a"], env);
      expect(table.stdout).toMatch(
        /^TYPE\s+SIZE\s+MODE\s+OWNER\s+MODIFIED\s+PATH\nfile\s+20 B\s+0\d{3}\s+\d+:\d+\s+.*\/docs\/a\/notes\.txt\n$/,
      );

      // The one VM: it mounts the volume and reads what the CLI wrote (and the SDK writes now).
      const vol = await Volumes.get("cli-data", { client });
      await vol.writeFile("/from-sdk.txt", "written by the sdk\n");
      const sbx = await runWrenn(
        ["sandbox", "create", "--memory", "512", "--volume", "cli-data:/mnt/data", "--json"],
        env,
        { timeoutMs: VM_STEP_MS },
      );
      expect(sbx.stderr).toBe("");
      const sandboxId = (JSON.parse(sbx.stdout) as { sandboxId: string }).sandboxId;
      const sandbox = await Sandbox.connect(sandboxId, { client });
      const out = await sandbox.commands.run("cat /mnt/data/from-sdk.txt /mnt/data/docs/a/notes.txt");
      expect(out).toMatchObject({ exitCode: 0, stdout: "written by the sdk\nreplaced from stdin\n" });
      await sandbox.commands.run("echo from the guest > /mnt/data/guest.txt");
      expect(await vol.readFile("/guest.txt")).toBe("from the guest\n");

      const busy = await runWrenn(["volume", "rm", "cli-data"], env);
      expect(busy.code).toBe(1);
      expect(busy.stderr).toMatch(/^error \[conflict\]:/);
      await sandbox.kill();

      const badMount = await runWrenn(["sandbox", "create", "--volume", "cli-data"], env);
      expect(badMount.code).toBe(2);
      const rm = await runWrenn(["volume", "rm", "cli-data"], env);
      expect(rm).toMatchObject({ code: 0, stdout: "deleted cli-data\n" });
      expect((await runWrenn(["volume", "ls"], env)).stdout).toBe("no volumes\n");
    },
    2 * VM_STEP_MS,
  );
});
