/**
 * The hot path of one sandbox, in one run, against the guest's own floor: a control plane
 * with one real host agent, one sandbox, the stock e2b SDK as the client.
 *
 * Exec (interleaved round by round): the in-guest wall time of `bash -l -c true`, timed
 * inside the guest with `date +%s%N` around it (no transport counted: the baseline);
 * `commands.run("true")` through the whole stack (SDK → control plane proxy → agent
 * traffic listener → envd); the same `bash -l -c true` through envd's protocol at the
 * agent's traffic listener (agent-direct) and at envd itself (envd-direct), which
 * attribute the overhead hop by hop.
 *
 * Files: 64 MiB of random bytes with `files.write` and `files.read` (bytes) through the
 * stack, against a raw TCP stream into the same guest: `socat` in the guest listening on a
 * port and writing what it receives to /dev/null (upload), or sending a 64 MiB file from the
 * guest's page cache (download), reached by a host-side socket at the sandbox's address.
 * `WRENN_BENCH_EXEC_RUNS` and `WRENN_BENCH_FILE_RUNS` (default 20 and 3) cut the runs.
 */
import { randomBytes } from "node:crypto";
import { connect } from "node:net";
import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { GuestClient, trafficHopHeaders } from "@wrenn/guest-client";
import { envNumber } from "@wrenn/shared";
import { Sandbox } from "e2b";
import { startStack } from "../../tests/e2e/stack-fixture.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "hot-path";

const EXEC_RUNS = Number(process.env.WRENN_BENCH_EXEC_RUNS || 20);
const FILE_RUNS = Number(process.env.WRENN_BENCH_FILE_RUNS || 3);
const FILE_BYTES = 64 * 1024 * 1024;
const UPLOAD_PORT = 7101;
const DOWNLOAD_PORT = 7102;
const E2B_ENV = ["E2B_API_URL", "E2B_SANDBOX_URL", "E2B_API_KEY", "E2B_DOMAIN"] as const;

/** Wall time of `bash -l -c true` inside the guest, in ms, timed by the guest's own clock. */
async function inGuestMs(sbx: Sandbox): Promise<number> {
  const r = await sbx.commands.run(
    "s=$(date +%s%N); bash -l -c true; e=$(date +%s%N); echo $(( (e - s) / 1000 ))",
  );
  return Number(r.stdout.trim()) / 1000;
}

/** Connects to a guest port, retrying while the listener started just before comes up. */
async function openSocket(host: string, port: number): Promise<import("node:net").Socket> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const s = connect({ host, port });
        s.once("connect", () => resolve(s));
        s.once("error", reject);
      });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Starts a one-shot socat in the guest (in the background) and waits until it listens. */
async function startSocat(sbx: Sandbox, args: string, port: number): Promise<void> {
  await sbx.commands.run(`socat -u ${args}`, { background: true });
  const probe = `for i in $(seq 100); do ss -ltn | grep -q ':${port} ' && exit 0; sleep 0.05; done; exit 1`;
  await sbx.commands.run(probe);
}

/** Raw TCP upload: the whole payload into socat → `sink` (/dev/null, or a file), until the guest closes. */
async function rawUploadMs(sbx: Sandbox, host: string, payload: Buffer, sink = "/dev/null"): Promise<number> {
  await startSocat(sbx, `TCP-LISTEN:${UPLOAD_PORT},reuseaddr OPEN:${sink},creat,trunc`, UPLOAD_PORT);
  const started = performance.now();
  const socket = await openSocket(host, UPLOAD_PORT);
  await new Promise<void>((resolve, reject) => {
    socket.on("error", reject);
    socket.on("close", () => resolve());
    socket.resume();
    socket.end(payload);
  });
  return performance.now() - started;
}

/** Raw TCP download: socat sends the file, the host reads until the guest closes. */
async function rawDownloadMs(sbx: Sandbox, host: string, path: string): Promise<number> {
  await startSocat(sbx, `OPEN:${path} TCP-LISTEN:${DOWNLOAD_PORT},reuseaddr`, DOWNLOAD_PORT);
  const started = performance.now();
  const socket = await openSocket(host, DOWNLOAD_PORT);
  let bytes = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on("data", (d: Buffer) => {
      bytes += d.length;
    });
    socket.on("error", reject);
    socket.on("end", () => resolve());
  });
  const ms = performance.now() - started;
  socket.destroy();
  if (bytes !== FILE_BYTES) throw new Error(`raw download got ${bytes} bytes`);
  return ms;
}

const mbps = (ms: number) => FILE_BYTES / 1e6 / (ms / 1000);

/** envd's `/files` at one hop, with fetch as the SDK uses it (multipart upload, default Accept-Encoding). */
interface FilesHop {
  base: string;
  headers: Record<string, string>;
}

async function hopUploadMs(hop: FilesHop, path: string, payload: Buffer): Promise<number> {
  return timeMs(async () => {
    const form = new FormData();
    form.append("file", new Blob([payload]), path);
    const res = await fetch(`${hop.base}/files?path=${encodeURIComponent(path)}&username=user`, {
      method: "POST",
      headers: hop.headers,
      body: form,
    });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`upload at ${hop.base}: ${res.status}`);
  });
}

async function hopDownloadMs(hop: FilesHop, path: string): Promise<number> {
  return timeMs(async () => {
    const res = await fetch(`${hop.base}/files?path=${encodeURIComponent(path)}&username=user`, {
      headers: hop.headers,
    });
    const bytes = (await res.arrayBuffer()).byteLength;
    if (!res.ok || bytes !== FILE_BYTES)
      throw new Error(`download at ${hop.base}: ${res.status}, ${bytes} bytes`);
  });
}

export async function run(ctx: SuiteContext): Promise<void> {
  // The translation cache size comes from the environment (WRENN_TCG_TB_SIZE_MIB), to compare sizes.
  const tb = envNumber(process.env.WRENN_TCG_TB_SIZE_MIB);
  const stack = await startStack({
    agents: [
      {
        netNamePrefix: "wh",
        firstSlot: 3600,
        maxSlots: 2,
        ...(tb === undefined ? {} : { tcgTbSizeMiB: tb }),
      },
    ],
  });
  const saved = Object.fromEntries(E2B_ENV.map((n) => [n, process.env[n]]));
  let sbx: Sandbox | undefined;
  try {
    process.env.E2B_API_URL = stack.url;
    process.env.E2B_SANDBOX_URL = stack.url;
    process.env.E2B_API_KEY = e2bFormOfApiKey(stack.apiKey);
    process.env.E2B_DOMAIN = "wrenn.test";
    const fx = stack.agents[0];
    if (!fx) throw new Error("no agent");
    sbx = await Sandbox.create({ timeoutMs: 3600_000 });
    const record = fx.agent.manager.get(sbx.sandboxId);
    const hostIp = record.hostIp;
    if (!hostIp) throw new Error("the sandbox has no host-side address");
    const { trafficPort } = await fx.client.ping({});
    const viaAgent = new GuestClient({
      baseUrl: `http://127.0.0.1:${trafficPort}`,
      headers: trafficHopHeaders({
        hostToken: fx.token,
        sandboxId: sbx.sandboxId,
        accessToken: record.envdAccessToken,
      }),
      requestTimeoutMs: 30_000,
    });
    const direct = new GuestClient({
      baseUrl: `http://${hostIp}:49983`,
      headers: { "x-access-token": record.envdAccessToken },
      requestTimeoutMs: 30_000,
    });
    const s = sbx;
    // The same SDK (Connect JSON, as envd answers it) straight at envd: the stack's hops apart.
    const sdkDirect = await Sandbox.connect(s.sandboxId, { sandboxUrl: `http://${hostIp}:49983` });
    const variants = {
      inGuest: () => inGuestMs(s),
      stack: () => timeMs(() => s.commands.run("true")),
      sdkDirect: () => timeMs(() => sdkDirect.commands.run("true")),
      agent: () => timeMs(() => viaAgent.exec({ command: "true" })),
      envd: () => timeMs(() => direct.exec({ command: "true" })),
    };
    const samples: Record<keyof typeof variants, number[]> = {
      inGuest: [],
      stack: [],
      sdkDirect: [],
      agent: [],
      envd: [],
    };
    for (const v of Object.values(variants)) await v(); // warm-up: JIT, connections, page cache
    for (let i = 0; i < EXEC_RUNS; i++) {
      for (const [k, v] of Object.entries(variants)) samples[k as keyof typeof variants].push(await v());
      if ((i + 1) % 5 === 0) ctx.log(`exec round ${i + 1}/${EXEC_RUNS}`);
    }
    const floor = "bash -l -c true, in-guest wall time (floor)";
    ctx.measurements.record(floor, "ms", samples.inGuest);
    ctx.measurements.record('commands.run("true"), stock SDK through the stack', "ms", samples.stack, {
      baseline: floor,
    });
    ctx.measurements.record('commands.run("true"), stock SDK at envd direct', "ms", samples.sdkDirect, {
      baseline: floor,
    });
    ctx.measurements.record(
      "bash -l -c true, envd protocol at the agent's traffic listener",
      "ms",
      samples.agent,
      {
        baseline: floor,
      },
    );
    ctx.measurements.record("bash -l -c true, envd protocol at envd direct", "ms", samples.envd, {
      baseline: floor,
    });

    const payload = randomBytes(FILE_BYTES);
    const path = "/home/user/hot-path.bin";
    const up: number[] = [];
    const down: number[] = [];
    const rawUp: number[] = [];
    const rawDown: number[] = [];
    const rawToDisk: number[] = [];
    const agentHop: FilesHop = {
      base: `http://127.0.0.1:${trafficPort}`,
      headers: trafficHopHeaders({
        hostToken: fx.token,
        sandboxId: s.sandboxId,
        accessToken: record.envdAccessToken,
      }),
    };
    const envdHop: FilesHop = {
      base: `http://${hostIp}:49983`,
      headers: { "x-access-token": record.envdAccessToken },
    };
    const hopUp = { agent: [] as number[], envd: [] as number[] };
    const hopDown = { agent: [] as number[], envd: [] as number[] };
    for (let i = 0; i < FILE_RUNS; i++) {
      rawUp.push(await rawUploadMs(s, hostIp, payload));
      rawToDisk.push(await rawUploadMs(s, hostIp, payload, "/home/user/hot-path-raw.bin"));
      up.push(await timeMs(() => s.files.write(path, payload.buffer as ArrayBuffer)));
      rawDown.push(await rawDownloadMs(s, hostIp, path));
      let got = 0;
      down.push(
        await timeMs(async () => {
          got = (await s.files.read(path, { format: "bytes" })).byteLength;
        }),
      );
      if (got !== FILE_BYTES) throw new Error(`files.read returned ${got} bytes`);
      hopUp.agent.push(await hopUploadMs(agentHop, path, payload));
      hopDown.agent.push(await hopDownloadMs(agentHop, path));
      hopUp.envd.push(await hopUploadMs(envdHop, path, payload));
      hopDown.envd.push(await hopDownloadMs(envdHop, path));
      ctx.log(
        `files round ${i + 1}/${FILE_RUNS}: up ${up.at(-1)?.toFixed(0)} ms (raw ${rawUp.at(-1)?.toFixed(0)}), down ${down.at(-1)?.toFixed(0)} ms (raw ${rawDown.at(-1)?.toFixed(0)})`,
      );
    }
    const rawUpName = "64 MiB raw TCP upload into the guest (socat → /dev/null)";
    const rawDownName = "64 MiB raw TCP download from the guest (socat ← file)";
    ctx.measurements.record(rawUpName, "MB/s", rawUp.map(mbps));
    ctx.measurements.record(
      "64 MiB raw TCP upload into a file on the guest's disk (socat → file)",
      "MB/s",
      rawToDisk.map(mbps),
      {
        baseline: rawUpName,
      },
    );
    ctx.measurements.record("64 MiB files.write, stock SDK through the stack", "MB/s", up.map(mbps), {
      baseline: rawUpName,
    });
    for (const [hop, where] of [
      ["agent", "the agent's traffic listener"],
      ["envd", "envd direct"],
    ] as const) {
      ctx.measurements.record(`64 MiB upload (fetch, multipart) at ${where}`, "MB/s", hopUp[hop].map(mbps), {
        baseline: rawUpName,
      });
    }
    ctx.measurements.record(rawDownName, "MB/s", rawDown.map(mbps));
    for (const [hop, where] of [
      ["agent", "the agent's traffic listener"],
      ["envd", "envd direct"],
    ] as const) {
      ctx.measurements.record(`64 MiB download (fetch) at ${where}`, "MB/s", hopDown[hop].map(mbps), {
        baseline: rawDownName,
      });
    }
    ctx.measurements.record(
      "64 MiB files.read (bytes), stock SDK through the stack",
      "MB/s",
      down.map(mbps),
      {
        baseline: rawDownName,
      },
    );
  } finally {
    await sbx?.kill().catch(() => {});
    await stack.close();
    for (const n of E2B_ENV) {
      if (saved[n] === undefined) delete process.env[n];
      else process.env[n] = saved[n];
    }
  }
}
