/**
 * Two control-plane replicas against one, in one run: both `wrenn-cp serve` processes on one
 * PostgreSQL database with one real host agent. "One replica" sends every request to A (B
 * stays up, idle: only its every-replica workers run); "two replicas" alternates requests
 * between A and B, as a round-robin load balancer would. Rounds of the two are interleaved
 * so load drift hits both alike.
 *
 * - API throughput: `GET /v1/sandboxes/{id}` with an API key, GETS_PER_ROUND per round at
 *   GET_CONCURRENCY in flight (req/s per round, and each request's latency).
 * - Create burst: BURST creates at once from one snapshot template (the burst's wall time
 *   per round); the sandboxes are deleted between rounds.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { Agent } from "undici";
import { startAgent } from "../../../tests/e2e/agent-fixture.js";
import { CpProcess, createFaultDatabase } from "../../../tests/faults/cp-process.js";
import { type Json, jsonCaller } from "../../lib/json-caller.js";
import { hostCpuSeconds, processCpuSeconds } from "../../lib/proc-usage.js";
import type { SuiteContext } from "../../lib/suite.js";
import { timeMs } from "../../lib/timing.js";

const ROUNDS = Number(process.env.WRENN_BENCH_REPLICA_ROUNDS || 5);
const GETS_PER_ROUND = 600;
const GET_CONCURRENCY = 20;
const BURST = Number(process.env.WRENN_BENCH_REPLICA_BURST || 12);
const BURST_ROUNDS = 3;

/** Worker timings of a served control plane (not the fault suite's short ones), logs quiet. */
const BENCH_CP_ENV: Record<string, string> = {
  WRENN_LOG_LEVEL: "warn",
  WRENN_CP_HEARTBEAT_INTERVAL_MS: "2000",
  WRENN_CP_RECONCILE_INTERVAL_MS: "5000",
  WRENN_CP_LEASE_TTL_MS: "6000",
  WRENN_CP_LEASE_RENEW_MS: "2000",
  WRENN_CP_HOST_DEADLINE_MS: "15000",
  WRENN_CP_TRANSITION_DEADLINE_MS: "60000",
  WRENN_CP_ORPHAN_GRACE_MS: "60000",
};

/** The PostgreSQL server's processes (postmaster and backends). */
function postgresPids(): number[] {
  try {
    return execFileSync("pgrep", ["-x", "postgres"], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** CPU time of who does the work of a round: each replica, PostgreSQL, this client, the host. */
function cpuNow(a: number, b: number) {
  const sum = (pids: number[]) => pids.reduce((t, pid) => t + (processCpuSeconds(pid) ?? 0), 0);
  const self = process.cpuUsage();
  return {
    a: processCpuSeconds(a) ?? 0,
    b: processCpuSeconds(b) ?? 0,
    pg: sum(postgresPids()),
    client: (self.user + self.system) / 1e6,
    host: hostCpuSeconds(),
  };
}
type CpuSnapshot = ReturnType<typeof cpuNow>;

/** Where the CPU went between two snapshots, in % of one core (host: % of all cores). */
function cpuShares(from: CpuSnapshot, to: CpuSnapshot, seconds: number) {
  const pct = (x: number) => (x / seconds) * 100;
  return {
    a: pct(to.a - from.a),
    b: pct(to.b - from.b),
    pg: pct(to.pg - from.pg),
    client: pct(to.client - from.client),
    host: ((to.host.busy - from.host.busy) / (to.host.total - from.host.total)) * 100,
  };
}

export async function runReplicaComparison(ctx: SuiteContext): Promise<void> {
  const fx = await startAgent(
    {
      netNamePrefix: "wbq",
      firstSlot: 2300,
      maxSlots: BURST + 4,
      vcpuOvercommit: 64,
      hostMemoryMiB: 64 * 1024,
      defaultMemoryMiB: 256,
      maxTimeoutSec: 7200,
    },
    { dataDir: join(ctx.scratchDir, "replicas-agent") },
    { waitForImageSnapshot: false },
  );
  const db = await createFaultDatabase();
  const a = await CpProcess.create(db.url, BENCH_CP_ENV);
  const b = await CpProcess.create(db.url, BENCH_CP_ENV);
  const patient = new Agent({ headersTimeout: 0, bodyTimeout: 0, connections: GET_CONCURRENCY });
  let key = "";
  const call = jsonCaller(() => key, patient);
  const created = new Set<string>();
  try {
    key = a.bootstrap();
    await a.start();
    await b.start();
    ctx.log("replicas: two control planes up on one PostgreSQL database");
    const host = await call(a.url, "POST", "/v1/hosts", { name: "bench-replicas", shared: true });
    const reg = await call(a.url, "POST", "/v1/hosts/register", {
      token: host.body.registration_token,
      url: `http://127.0.0.1:${fx.agent.port}`,
      agent_token: fx.token,
    });
    if (reg.status !== 200) throw new Error(`register failed: ${JSON.stringify(reg.body)}`);
    const source = await call(a.url, "POST", "/v1/sandboxes", {
      template: "base",
      memory_mb: 256,
      timeout_sec: 3600,
    });
    if (source.status !== 201) throw new Error(`create failed: ${JSON.stringify(source.body)}`);
    const sourceId = String(source.body.id);
    created.add(sourceId);
    const snap = await call(a.url, "POST", "/v1/snapshots", { sandbox_id: sourceId, name: "bench-replicas" });
    if (snap.status !== 201) throw new Error(`snapshot failed: ${JSON.stringify(snap.body)}`);

    const oneBase = (_i: number) => a.url;
    const twoBase = (i: number) => (i % 2 === 0 ? a.url : b.url);
    const variants = [
      { label: "one replica", base: oneBase },
      { label: "two replicas", base: twoBase },
    ] as const;

    // API throughput.
    const rates: Record<string, number[]> = { "one replica": [], "two replicas": [] };
    const latencies: Record<string, number[]> = { "one replica": [], "two replicas": [] };
    const cpu: Record<string, ReturnType<typeof cpuShares>[]> = { "one replica": [], "two replicas": [] };
    let getErrors = 0;
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        let next = 0;
        const before = cpuNow(a.pid ?? 0, b.pid ?? 0);
        const wall = await timeMs(() =>
          Promise.all(
            Array.from({ length: GET_CONCURRENCY }, async () => {
              for (let i = next++; i < GETS_PER_ROUND; i = next++) {
                const ms = await timeMs(async () => {
                  const r = await call(v.base(i), "GET", `/v1/sandboxes/${sourceId}`);
                  if (r.status !== 200) getErrors++;
                });
                latencies[v.label]?.push(ms);
              }
            }),
          ),
        );
        rates[v.label]?.push((GETS_PER_ROUND * 1000) / wall);
        cpu[v.label]?.push(cpuShares(before, cpuNow(a.pid ?? 0, b.pid ?? 0), wall / 1000));
      }
    }
    const getName = (label: string) => `GET /v1/sandboxes/{id}, ${GET_CONCURRENCY} in flight, ${label}`;
    ctx.measurements.record(`${getName("one replica")}: throughput`, "ops/s", rates["one replica"] ?? []);
    ctx.measurements.record(`${getName("two replicas")}: throughput`, "ops/s", rates["two replicas"] ?? [], {
      baseline: `${getName("one replica")}: throughput`,
      notes: `${ROUNDS} rounds of ${GETS_PER_ROUND} each, interleaved; ${getErrors} non-200 answers`,
    });
    for (const v of variants) {
      const rows = cpu[v.label] ?? [];
      const mean = (k: keyof ReturnType<typeof cpuShares>) =>
        (rows.reduce((t, r) => t + r[k], 0) / Math.max(rows.length, 1)).toFixed(0);
      ctx.log(
        `CPU during the GETs, ${v.label}: A ${mean("a")} %, B ${mean("b")} %, PostgreSQL ${mean("pg")} %, ` +
          `bench client ${mean("client")} % (of one core); host busy ${mean("host")} % of all cores`,
      );
    }
    ctx.measurements.record(`${getName("one replica")}: each request`, "ms", latencies["one replica"] ?? []);
    ctx.measurements.record(
      `${getName("two replicas")}: each request`,
      "ms",
      latencies["two replicas"] ?? [],
      {
        baseline: `${getName("one replica")}: each request`,
      },
    );

    // Create burst from the snapshot template.
    const bursts: Record<string, number[]> = { "one replica": [], "two replicas": [] };
    const statuses = new Map<number, number>();
    for (let round = 0; round < BURST_ROUNDS; round++) {
      for (const v of round % 2 === 0 ? variants : [...variants].reverse()) {
        const ids: string[] = [];
        const wall = await timeMs(() =>
          Promise.all(
            Array.from({ length: BURST }, async (_, i) => {
              const r = await call(v.base(i), "POST", "/v1/sandboxes", {
                template: "bench-replicas",
                timeout_sec: 3600,
              }).catch((err: unknown) => ({ status: 0, body: { error: String(err) } as Json }));
              statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
              if (r.status === 201) ids.push(String(r.body.id));
            }),
          ),
        );
        bursts[v.label]?.push(wall);
        for (const id of ids) created.add(id);
        await Promise.all(ids.map((id) => call(a.url, "DELETE", `/v1/sandboxes/${id}`)));
        for (const id of ids) created.delete(id);
      }
    }
    const burstName = (label: string) => `create burst of ${BURST} from a snapshot template, ${label}`;
    ctx.measurements.record(burstName("one replica"), "ms", bursts["one replica"] ?? []);
    ctx.measurements.record(burstName("two replicas"), "ms", bursts["two replicas"] ?? [], {
      baseline: burstName("one replica"),
      notes: `wall time of each burst, ${BURST_ROUNDS} rounds each, interleaved; statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    });
  } finally {
    for (const id of created) await call(a.url, "DELETE", `/v1/sandboxes/${id}`).catch(() => {});
    await call(a.url, "DELETE", "/v1/snapshots/bench-replicas").catch(() => {});
    await a.close();
    await b.close();
    await db.drop();
    await fx.close();
    await patient.close();
  }
}
