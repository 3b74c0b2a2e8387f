/**
 * envd against its floor, in one run: a command's round trip through Process.Start beside
 * spawning it directly, and /files upload/download beside a plain Node HTTP server moving
 * the same bytes to and from the same disk. envd runs as a real child process (--no-vm).
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Process } from "@wrenn/proto";
import { Sandbox } from "e2b";
import { startChildServer } from "../lib/child-server.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeInterleaved } from "../lib/timing.js";

export const name = "envd";

const EXEC_RUNS = 60;
/** `bash -l` costs ~0.2 s here, so the SDK pair gets fewer runs to keep the suite near a minute. */
const SDK_RUNS = 20;
const FILE_BYTES = 64 * 1024 * 1024;
const FILE_RUNS = 5;

/** Spawns a command directly and waits for it to exit, its stdout read: the floor. */
function spawnDirect(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      out += d;
    });
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 && out === "hi\n" ? resolve() : reject(new Error(`${cmd}: ${code} ${out}`)),
    );
  });
}

/** Reads a response body to its end, counting bytes without keeping them. */
async function drainBody(res: Response): Promise<number> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  let bytes = 0;
  if (res.body === null) return bytes; // 204
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) bytes += chunk.byteLength;
  return bytes;
}

async function hashOfBody(res: Response): Promise<string> {
  if (!res.ok) throw new Error(`${res.status} ${await res.text()}`);
  const hash = createHash("sha256");
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) hash.update(chunk);
  return hash.digest("hex");
}

const mbPerS = (bytes: number) => (ms: number) => bytes / 1e6 / (ms / 1000);

async function benchExec(ctx: SuiteContext, envdUrl: string): Promise<void> {
  const client = createClient(Process, createConnectTransport({ baseUrl: envdUrl, httpVersion: "1.1" }));
  const viaConnect = async () => {
    let out = "";
    let exitCode: number | undefined;
    for await (const res of client.start({ process: { cmd: "/bin/echo", args: ["hi"] } })) {
      const e = res.event?.event;
      if (e?.case === "data" && e.value.output.case === "stdout")
        out += Buffer.from(e.value.output.value).toString();
      if (e?.case === "end") exitCode = e.value.exitCode;
    }
    if (out !== "hi\n" || exitCode !== 0)
      throw new Error(`echo via envd: ${exitCode} ${JSON.stringify(out)}`);
  };
  ctx.log(`exec: /bin/echo hi, ${EXEC_RUNS} runs each (direct spawn vs Connect Process.Start)`);
  const exec = await timeInterleaved(
    { direct: () => spawnDirect("/bin/echo", ["hi"]), envd: viaConnect },
    { runs: EXEC_RUNS, warmup: 5 },
  );
  ctx.measurements.record("echo hi: child_process.spawn (floor)", "ms", exec.direct);
  ctx.measurements.record("echo hi: envd Process.Start (Connect)", "ms", exec.envd, {
    baseline: "echo hi: child_process.spawn (floor)",
  });

  // The stock SDK runs every command through `bash -l -c`, so its floor is that spawn.
  const sandbox = await Sandbox.create({ debug: true, sandboxUrl: envdUrl });
  const viaSdk = async () => {
    const result = await sandbox.commands.run("echo hi");
    if (result.stdout !== "hi\n") throw new Error(`echo via SDK: ${JSON.stringify(result)}`);
  };
  ctx.log(`exec: echo hi, ${SDK_RUNS} runs each (bash -l -c vs e2b SDK commands.run)`);
  const sdk = await timeInterleaved(
    { direct: () => spawnDirect("/bin/bash", ["-l", "-c", "echo hi"]), sdk: viaSdk },
    { runs: SDK_RUNS, warmup: 2 },
  );
  ctx.measurements.record("echo hi: spawn bash -l -c (floor)", "ms", sdk.direct);
  ctx.measurements.record("echo hi: e2b SDK commands.run", "ms", sdk.sdk, {
    baseline: "echo hi: spawn bash -l -c (floor)",
    notes:
      "the SDK wraps commands in bash -l -c; envd's environment (HOME, profile) differs from this shell's",
  });
}

async function benchFiles(ctx: SuiteContext, envdUrl: string, plainUrl: string): Promise<void> {
  const data = randomBytes(FILE_BYTES);
  const digest = createHash("sha256").update(data).digest("hex");
  const envdPath = join(ctx.scratchDir, "envd-files", "blob.bin");
  const envdFiles = `${envdUrl}/files?path=${encodeURIComponent(envdPath)}`;
  const plainFile = `${plainUrl}/blob.bin`;
  const blob = new Blob([data]); // built once: the copy is not the server's cost
  const multipart = () => {
    const form = new FormData();
    form.append("file", blob, envdPath);
    return form;
  };
  // envd gzips a download when the client accepts it, and fetch (so the e2b SDK) does by default.
  const identity = { headers: { "accept-encoding": "identity" } };
  const ops = {
    plainPut: async () => drainBody(await fetch(plainFile, { method: "PUT", body: data })),
    envdOctet: async () =>
      drainBody(
        await fetch(envdFiles, {
          method: "POST",
          body: data,
          headers: { "content-type": "application/octet-stream" },
        }),
      ),
    envdMultipart: async () => drainBody(await fetch(envdFiles, { method: "POST", body: multipart() })),
    plainGet: async () => drainBody(await fetch(plainFile, identity)),
    envdGet: async () => drainBody(await fetch(envdFiles, identity)),
    envdGetDefault: async () => drainBody(await fetch(envdFiles)),
  };

  // Check once that both servers hand back exactly what they were given.
  await ops.plainPut();
  await ops.envdOctet();
  const digests = [
    await hashOfBody(await fetch(plainFile, identity)),
    await hashOfBody(await fetch(envdFiles, identity)),
    await hashOfBody(await fetch(envdFiles)),
  ];
  if (digests.some((d) => d !== digest)) throw new Error("a server returned different bytes");
  if (createHash("sha256").update(readFileSync(envdPath)).digest("hex") !== digest) {
    throw new Error("envd wrote different bytes to disk");
  }

  const mb = (FILE_BYTES / 1e6).toFixed(1);
  ctx.log(`files: ${mb} MB, ${FILE_RUNS} runs each of upload (PUT / POST octet-stream / POST multipart)`);
  const up = await timeInterleaved(
    { plain: ops.plainPut, octet: ops.envdOctet, multipart: ops.envdMultipart },
    { runs: FILE_RUNS, warmup: 1 },
  );
  ctx.log(`files: ${FILE_RUNS} runs each of download (GET identity / GET as fetch sends it)`);
  const down = await timeInterleaved(
    { plain: ops.plainGet, envd: ops.envdGet, envdDefault: ops.envdGetDefault },
    { runs: FILE_RUNS, warmup: 0 },
  );

  const rate = mbPerS(FILE_BYTES);
  const notes = `${mb} MB per transfer, loopback, servers in child processes writing to ${ctx.scratchDir}`;
  ctx.measurements.record("upload: plain Node PUT (baseline)", "MB/s", up.plain.map(rate), { notes });
  ctx.measurements.record("upload: envd POST /files octet-stream", "MB/s", up.octet.map(rate), {
    baseline: "upload: plain Node PUT (baseline)",
  });
  ctx.measurements.record("upload: envd POST /files multipart", "MB/s", up.multipart.map(rate), {
    baseline: "upload: plain Node PUT (baseline)",
  });
  ctx.measurements.record("download: plain Node GET (baseline)", "MB/s", down.plain.map(rate));
  ctx.measurements.record("download: envd GET /files (identity)", "MB/s", down.envd.map(rate), {
    baseline: "download: plain Node GET (baseline)",
  });
  ctx.measurements.record(
    "download: envd GET /files (fetch default: gzip)",
    "MB/s",
    down.envdDefault.map(rate),
    {
      baseline: "download: plain Node GET (baseline)",
      notes: "random bytes, so gzip only costs; fetch and the e2b SDK accept gzip unless told otherwise",
    },
  );
}

export async function run(ctx: SuiteContext): Promise<void> {
  const tsx = ["--import", "tsx"];
  ctx.log("starting envd and the plain file server");
  const envd = await startChildServer(
    process.execPath,
    [
      ...tsx,
      "packages/envd/src/main.ts",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--no-vm",
      "--user",
      userInfo().username,
      "--workdir",
      ctx.scratchDir,
    ],
    { cwd: ctx.repoRoot, readyLine: /envd listening on (\d+)/ },
  );
  try {
    const plain = await startChildServer(
      process.execPath,
      [...tsx, "bench/fixtures/plain-file-server.ts", ctx.scratchDir],
      { cwd: ctx.repoRoot, readyLine: /listening on (\d+)/ },
    );
    try {
      const envdUrl = `http://127.0.0.1:${envd.port}`;
      await benchExec(ctx, envdUrl);
      await benchFiles(ctx, envdUrl, `http://127.0.0.1:${plain.port}`);
    } finally {
      await plain.stop();
    }
  } finally {
    await envd.stop();
  }
}
