/**
 * The control plane under load, with one real host agent behind it: 1000 authenticated
 * `GET /v1/sandboxes/{id}` (10 in flight) beside unauthenticated `GET /health`; sandbox
 * traffic through the proxy (control plane → agent → envd) beside the same requests sent
 * to the sandbox straight from the host; fork through /v1 beside fork through the e2b API;
 * and 100 concurrent creates from one snapshot template beside creates from it one at a time.
 * First, two control-plane replicas against one (control-plane/replicas.ts).
 * `WRENN_BENCH_CP_PARTS=replicas` (or `single`) runs only that part.
 */
import { join } from "node:path";
import { bootstrapAdminTeam, createControlPlane } from "@wrenn/control-plane";
import { createSilentLogger } from "@wrenn/shared";
import { Agent, fetch as undiciFetch } from "undici";
import { startAgent } from "../../tests/e2e/agent-fixture.js";
import { type Json, jsonCaller } from "../lib/json-caller.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";
import { runReplicaComparison } from "./control-plane/replicas.js";

export const name = "control-plane";

const GETS = 1000;
const GET_CONCURRENCY = 10;
/**
 * Creates sent at once. 100 saturates a 2-core TCG host (idle TCG guests still cost CPU:
 * ~60 running put the load average above 80), so `WRENN_BENCH_BURST` can make it smaller.
 */
const BURST = Number(process.env.WRENN_BENCH_BURST || 100);
const SEQUENTIAL = 5;
const PROXIED = 500;
const TRANSFER_MIB = 64;
const TRANSFERS = 3;
const FORK_COUNT = 4;
const FORK_RUNS = 3;

export async function run(ctx: SuiteContext): Promise<void> {
  const parts = process.env.WRENN_BENCH_CP_PARTS || "replicas,single";
  if (parts.includes("replicas")) await runReplicaComparison(ctx);
  if (parts.includes("single")) await runSingle(ctx);
}

async function runSingle(ctx: SuiteContext): Promise<void> {
  const fx = await startAgent(
    {
      netNamePrefix: "wbc",
      firstSlot: 2000,
      maxSlots: 120,
      // 100 idle clones of one template share most of their memory; admit them.
      vcpuOvercommit: 64,
      hostMemoryMiB: 128 * 1024,
      defaultMemoryMiB: 256,
      maxTimeoutSec: 7200,
    },
    { dataDir: join(ctx.scratchDir, "agent") },
    { waitForImageSnapshot: false },
  );
  const { agent, token: agentToken } = fx;
  const cp = await createControlPlane({
    config: { port: 0, pgliteDir: "memory", heartbeatIntervalMs: 1000, reconcileIntervalMs: 2000 },
    logger: createSilentLogger(),
  });
  await cp.start();
  const key = (await bootstrapAdminTeam(cp.context)).apiKey.value;
  // A create that waits its turn behind 99 others may take minutes: no client-side
  // deadline (the default one, 300 s for headers, would count as a failure of the server).
  const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0 });
  const call = jsonCaller(() => key, patient);
  const api = (method: string, path: string, body?: unknown, auth = true) =>
    call(cp.url, method, path, body, auth);
  const created: string[] = [];
  try {
    const host = await api("POST", "/v1/hosts", { name: "bench", shared: true });
    await api("POST", "/v1/hosts/register", {
      token: host.body.registration_token,
      url: `http://127.0.0.1:${agent.port}`,
      agent_token: agentToken,
    });
    const source = await api("POST", "/v1/sandboxes", {
      template: "base",
      memory_mb: 256,
      timeout_sec: 3600,
    });
    if (source.status !== 201) throw new Error(`create failed: ${JSON.stringify(source.body)}`);
    const sourceId = String(source.body.id);
    created.push(sourceId);

    const health: number[] = [];
    const gets: number[] = [];
    let getErrors = 0;
    const one = async (path: string, auth: boolean, out: number[]) => {
      let status = 0;
      out.push(
        await timeMs(async () => {
          status = (await api("GET", path, undefined, auth)).status;
        }),
      );
      if (status !== 200) getErrors++;
    };
    const pool = async (count: number, task: () => Promise<void>) => {
      let left = count;
      await Promise.all(
        Array.from({ length: GET_CONCURRENCY }, async () => {
          while (left-- > 0) await task();
        }),
      );
    };
    await pool(GETS, () => one("/health", false, health));
    await pool(GETS, () => one(`/v1/sandboxes/${sourceId}`, true, gets));
    ctx.measurements.record(`GET /health (no auth), ${GET_CONCURRENCY} in flight`, "ms", health);
    ctx.measurements.record(`GET /v1/sandboxes/{id} (API key), ${GET_CONCURRENCY} in flight`, "ms", gets, {
      baseline: `GET /health (no auth), ${GET_CONCURRENCY} in flight`,
      notes: `${getErrors} non-200 answers of ${2 * GETS}`,
    });

    // Sandbox traffic: envd's /health and a large /files download, straight from the host
    // to the sandbox's address and through the proxy's two hops.
    const hostIp = agent.manager.get(sourceId).hostIp;
    const token = String(source.body.envd_access_token);
    const routed = { "e2b-sandbox-id": sourceId, "e2b-sandbox-port": "49983" };
    const direct: number[] = [];
    const proxied: number[] = [];
    let trafficErrors = 0;
    const envdGet = async (url: string, headers: Record<string, string>, out: number[]) => {
      out.push(
        await timeMs(async () => {
          const res = await fetch(url, { headers });
          await res.arrayBuffer();
          if (!res.ok) trafficErrors++;
        }),
      );
    };
    await pool(PROXIED, () => envdGet(`http://${hostIp}:49983/health`, {}, direct));
    await pool(PROXIED, () => envdGet(`${cp.url}/health`, routed, proxied));
    ctx.measurements.record(
      `envd /health straight to the sandbox, ${GET_CONCURRENCY} in flight`,
      "ms",
      direct,
    );
    ctx.measurements.record(
      `envd /health through the proxy (2 hops), ${GET_CONCURRENCY} in flight`,
      "ms",
      proxied,
      {
        baseline: `envd /health straight to the sandbox, ${GET_CONCURRENCY} in flight`,
        notes: `${trafficErrors} failed of ${2 * PROXIED}`,
      },
    );
    const made = await api("POST", `/v1/sandboxes/${sourceId}/exec`, {
      command: `head -c ${TRANSFER_MIB * 1024 * 1024} /dev/urandom > /tmp/big.bin`,
    });
    if (made.status !== 200) throw new Error(`exec failed: ${JSON.stringify(made.body)}`);
    const fileUrl = `/files?path=${encodeURIComponent("/tmp/big.bin")}&username=user`;
    const directFile: number[] = [];
    const proxiedFile: number[] = [];
    for (let i = 0; i < TRANSFERS; i++) {
      await envdGet(`http://${hostIp}:49983${fileUrl}`, { "x-access-token": token }, directFile);
      await envdGet(`${cp.url}${fileUrl}`, { ...routed, "x-access-token": token }, proxiedFile);
    }
    ctx.measurements.record(`${TRANSFER_MIB} MiB download straight from envd`, "ms", directFile);
    ctx.measurements.record(`${TRANSFER_MIB} MiB download through the proxy`, "ms", proxiedFile, {
      baseline: `${TRANSFER_MIB} MiB download straight from envd`,
      notes: `${trafficErrors} failed in all`,
    });

    const snap = await api("POST", "/v1/snapshots", { sandbox_id: sourceId, name: "bench-load" });
    if (snap.status !== 201) throw new Error(`snapshot failed: ${JSON.stringify(snap.body)}`);
    const sequential: number[] = [];
    for (let i = 0; i < SEQUENTIAL; i++) {
      sequential.push(
        await timeMs(async () => {
          const r = await api("POST", "/v1/sandboxes", { template: "bench-load", timeout_sec: 3600 });
          if (r.status !== 201) throw new Error(`create from template failed: ${JSON.stringify(r.body)}`);
          created.push(String(r.body.id));
        }),
      );
    }
    for (const id of created.splice(1)) await api("DELETE", `/v1/sandboxes/${id}`);
    ctx.measurements.record("create from template, one at a time", "ms", sequential);

    // Fork of FORK_COUNT from the running source, interleaved: /v1 (one agent call: a hidden
    // template and its clones) and the e2b API (a snapshot, then creates FORK_COUNT at once).
    const nativeFork: number[] = [];
    const e2bFork: number[] = [];
    for (let i = 0; i < FORK_RUNS; i++) {
      let ids: string[] = [];
      nativeFork.push(
        await timeMs(async () => {
          const r = await api("POST", `/v1/sandboxes/${sourceId}/fork`, { count: FORK_COUNT });
          if (r.status !== 201) throw new Error(`fork failed: ${JSON.stringify(r.body)}`);
          ids = (r.body.items as Json[]).map((f) => String(f.id));
        }),
      );
      for (const id of ids) await api("DELETE", `/v1/sandboxes/${id}`);
      e2bFork.push(
        await timeMs(async () => {
          const res = await undiciFetch(`${cp.url}/sandboxes/${sourceId}/fork`, {
            dispatcher: patient,
            method: "POST",
            headers: { "x-api-key": key, "content-type": "application/json" },
            body: JSON.stringify({ count: FORK_COUNT }),
          });
          const results = (await res.json()) as { sandbox?: { sandboxID: string }; error?: Json }[];
          if (res.status !== 201 || results.some((r) => !r.sandbox)) {
            throw new Error(`e2b fork failed: ${res.status} ${JSON.stringify(results)}`);
          }
          ids = results.map((r) => r.sandbox?.sandboxID ?? "");
        }),
      );
      for (const id of ids) await api("DELETE", `/v1/sandboxes/${id}`);
    }
    ctx.measurements.record(`fork of ${FORK_COUNT} through /v1 (one agent call)`, "ms", nativeFork);
    ctx.measurements.record(`fork of ${FORK_COUNT} through the e2b API (snapshot + creates)`, "ms", e2bFork, {
      baseline: `fork of ${FORK_COUNT} through /v1 (one agent call)`,
    });

    const burst: number[] = [];
    const codes = new Map<number, number>();
    const errors = new Set<string>();
    const wall = await timeMs(async () => {
      await Promise.all(
        Array.from({ length: BURST }, async () => {
          let status = 0;
          burst.push(
            await timeMs(async () => {
              const r = await api("POST", "/v1/sandboxes", {
                template: "bench-load",
                timeout_sec: 3600,
              }).catch((err: unknown) => ({ status: 0, body: { error: String(err) } as Json }));
              status = r.status;
              if (r.status === 201) created.push(String(r.body.id));
              else errors.add(JSON.stringify(r.body).slice(0, 200));
            }),
          );
          codes.set(status, (codes.get(status) ?? 0) + 1);
        }),
      );
    });
    ctx.log(`burst of ${BURST}: ${(wall / 1000).toFixed(1)} s, statuses ${JSON.stringify([...codes])}`);
    for (const e of errors) ctx.log(`error: ${e}`);
    ctx.measurements.record(`create from template, ${BURST} at once (each request)`, "ms", burst, {
      baseline: "create from template, one at a time",
      notes: `all ${BURST} done in ${(wall / 1000).toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(codes))}`,
    });
  } finally {
    for (const id of created) await api("DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    await api("DELETE", "/v1/snapshots/bench-load").catch(() => {});
    await cp.stop();
    await fx.close();
  }
}
