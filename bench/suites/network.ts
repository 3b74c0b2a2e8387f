/**
 * Egress policy overhead, in one run on one sandbox whose policy is swapped live, round by
 * round: open (no policy), allowed by CIDR on a deny-all base (the namespace's rules only),
 * and allowed by domain on a deny-all base (ports 80/443 through the agent's egress proxy,
 * which reads the name and dials it). The "world" is a namespace on this machine
 * (198.51.100.192/26; nothing leaves it) behind the agent's uplink. Timed inside the guest:
 * - TCP connection setup (connect, first byte, close), open vs CIDR;
 * - HTTPS handshake to allowed.test (curl's time_appconnect), open vs domain;
 * - 64 MiB over plain TCP, open vs CIDR, and over HTTP by name (Host), open vs domain.
 * `WRENN_BENCH_NET_ROUNDS` (default 3) rounds; 20 connects and 5 handshakes per round.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { startResponder, type TestResponder } from "../../packages/host-agent/test/dns-test-server.js";
import { type EgressWorld, startEgressWorld } from "../../packages/host-agent/test/egress-test-world.js";
import { type AgentFixture, exec, startAgent } from "../../tests/e2e/agent-fixture.js";
import type { SuiteContext } from "../lib/suite.js";

export const name = "network";

const ROUNDS = Number(process.env.WRENN_BENCH_NET_ROUNDS || 3);
const CONNECTS = 20;
const HANDSHAKES = 5;
const BULK_BYTES = 64 * 1024 * 1024;
const PREFIX = "wbe";

/** In the world: 64 MiB raw on a2:7100 and as an HTTP response on a2:80, to any request. */
const BULK_JS = `
const net = require("node:net"), http = require("node:http");
const a2 = process.argv[1], n = Number(process.argv[2]), chunk = Buffer.alloc(1 << 20, 7);
const send = (w, done) => { let left = n; const more = () => { while (left > 0) { left -= chunk.length; if (!w.write(chunk)) return w.once("drain", more); } done(); }; more(); };
let up = 0; const ready = () => { if (++up === 2) process.stdout.write("listening\\n"); };
net.createServer((s) => { s.on("error", () => {}); send(s, () => s.end()); }).listen(7100, a2, ready);
http.createServer((q, r) => { r.writeHead(200, { "content-length": n }); send(r, () => r.end()); }).listen(80, a2, ready);
`;

const CONNECT_PY = `
import socket,sys,time
h,p,n=sys.argv[1],int(sys.argv[2]),int(sys.argv[3])
out=[]
for i in range(n):
  t=time.perf_counter(); s=socket.create_connection((h,p),timeout=5); s.recv(100); s.close(); out.append((time.perf_counter()-t)*1000)
print(" ".join("%.3f"%x for x in out))
`;

const BULK_PY = `
import socket,sys,time
h,p,req=sys.argv[1],int(sys.argv[2]),sys.argv[3]
t=time.perf_counter(); s=socket.create_connection((h,p),timeout=10)
if req: s.sendall(("GET / HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n"%req).encode())
n=0
while True:
  d=s.recv(1<<20)
  if not d: break
  n+=len(d)
print(n, time.perf_counter()-t)
`;

async function startBulk(world: EgressWorld): Promise<ChildProcess> {
  const child = spawn(
    "ip",
    ["netns", "exec", world.netns, "node", "-e", BULK_JS, world.a2, String(BULK_BYTES)],
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on("data", (d: Buffer) => {
      if (d.toString().includes("listening")) resolve();
    });
    child.on("exit", (code) => reject(new Error(`bulk server exited (${code})`)));
  });
  return child;
}

export async function run(ctx: SuiteContext): Promise<void> {
  let world: EgressWorld | undefined;
  let upstream: TestResponder | undefined;
  let bulk: ChildProcess | undefined;
  let fx: AgentFixture | undefined;
  try {
    world = await startEgressWorld(PREFIX, 192);
    const w = world;
    upstream = await startResponder({ records: { "allowed.test": [w.a1], "bulk.test": [w.a2] } });
    bulk = await startBulk(w);
    fx = await startAgent(
      {
        netNamePrefix: PREFIX,
        firstSlot: 4600,
        maxSlots: 4,
        uplinkInterface: w.hostLink,
        dnsUpstreams: [`${upstream.host}:${upstream.port}`],
      },
      { dataDir: `${ctx.scratchDir}/agent` },
    );
    const f = fx;
    const { sandbox } = await f.client.createSandbox({ image: "base", timeoutSec: 3600 });
    const id = sandbox?.sandboxId ?? "";
    const run = async (command: string) => {
      const r = await exec(f, id, command, { timeoutMs: 120_000 });
      if (r.exitCode !== 0) throw new Error(`'${command.slice(0, 60)}' exited ${r.exitCode}: ${r.stderr}`);
      return r.stdout.trim();
    };
    await run(
      `cat > /tmp/connect.py <<'EOF'\n${CONNECT_PY}\nEOF\ncat > /tmp/bulk.py <<'EOF'\n${BULK_PY}\nEOF`,
    );
    const policies = {
      open: { allowOut: [], denyOut: [] },
      cidr: { allowOut: [w.a1, w.a2], denyOut: ["0.0.0.0/0"] },
      domain: { allowOut: ["allowed.test", "bulk.test"], denyOut: ["0.0.0.0/0"] },
    };
    const setPolicy = (p: keyof typeof policies) =>
      f.client.updateNetworkPolicy({ sandboxId: id, networkPolicy: policies[p] });
    const connects = { open: [] as number[], cidr: [] as number[] };
    const handshakes = { open: [] as number[], domain: [] as number[] };
    const tcpBulk = { open: [] as number[], cidr: [] as number[] };
    const httpBulk = { open: [] as number[], domain: [] as number[] };
    const connectMs = async () =>
      (await run(`python3 /tmp/connect.py ${w.a2} 7000 ${CONNECTS}`)).split(" ").map(Number);
    const handshakeMs = async () => {
      const loop = `for i in $(seq ${HANDSHAKES}); do curl -sk -o /dev/null -m 10 -w '%{time_appconnect}\\n' --resolve allowed.test:443:${w.a1} https://allowed.test/; done`;
      return (await run(loop)).split("\n").map((s) => Number(s) * 1000);
    };
    const bulkMBps = async (port: number, host: string) => {
      const [bytes, secs] = (await run(`python3 /tmp/bulk.py ${w.a2} ${port} '${host}'`))
        .split(" ")
        .map(Number);
      if ((bytes ?? 0) < BULK_BYTES) throw new Error(`bulk read ${bytes} bytes`);
      return BULK_BYTES / 1e6 / (secs ?? 1);
    };
    for (let i = 0; i < ROUNDS; i++) {
      await setPolicy("open");
      connects.open.push(...(await connectMs()));
      handshakes.open.push(...(await handshakeMs()));
      tcpBulk.open.push(await bulkMBps(7100, ""));
      httpBulk.open.push(await bulkMBps(80, "bulk.test"));
      await setPolicy("cidr");
      connects.cidr.push(...(await connectMs()));
      tcpBulk.cidr.push(await bulkMBps(7100, ""));
      await setPolicy("domain");
      handshakes.domain.push(...(await handshakeMs()));
      httpBulk.domain.push(await bulkMBps(80, "bulk.test"));
      ctx.log(`round ${i + 1}/${ROUNDS}`);
    }
    const m = ctx.measurements;
    m.record("TCP connect + first byte, open", "ms", connects.open);
    m.record("TCP connect + first byte, allowed by CIDR (deny-all base)", "ms", connects.cidr, {
      baseline: "TCP connect + first byte, open",
    });
    m.record("HTTPS handshake to allowed.test, open", "ms", handshakes.open);
    m.record(
      "HTTPS handshake to allowed.test, allowed by domain (egress proxy, SNI)",
      "ms",
      handshakes.domain,
      {
        baseline: "HTTPS handshake to allowed.test, open",
      },
    );
    m.record("64 MiB over TCP, open", "MB/s", tcpBulk.open);
    m.record("64 MiB over TCP, allowed by CIDR", "MB/s", tcpBulk.cidr, { baseline: "64 MiB over TCP, open" });
    m.record("64 MiB over HTTP by name, open", "MB/s", httpBulk.open);
    m.record("64 MiB over HTTP by name, allowed by domain (egress proxy, Host)", "MB/s", httpBulk.domain, {
      baseline: "64 MiB over HTTP by name, open",
    });
  } finally {
    await fx?.close();
    bulk?.kill("SIGKILL");
    await upstream?.close();
    await world?.stop();
  }
}
