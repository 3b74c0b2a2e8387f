/**
 * Real microVMs, in one run: cold boot to envd ready through the host agent beside a bare
 * QEMU boot of the same kernel and initramfs to the first line its init prints (the floor),
 * and a command's round trip through the control plane's `/v1/sandboxes/{id}/exec` and
 * through the agent's traffic listener (envd's protocol, the hop /v1 takes) beside envd's
 * Process.Start direct, interleaved in one loop.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { bootstrapAdminTeam, createControlPlane } from "@wrenn/control-plane";
import { Process } from "@wrenn/proto";
import { createSilentLogger } from "@wrenn/shared";
import { guestThroughTraffic, IMAGES_DIR, startAgent } from "../../tests/e2e/agent-fixture.js";
import { jsonCaller } from "../lib/json-caller.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "vm";

const BOOTS = Number(process.env.WRENN_BENCH_BOOTS || 5);
const EXEC_RUNS = Number(process.env.WRENN_BENCH_EXEC_RUNS || 30);

function tscKhz(cpuinfo: string): number {
  return Math.round(Number(/^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1] ?? "0") * 1000);
}

/** Boots kernel + initramfs with no disk and times the first line the initramfs init prints. */
async function bareBootMs(imageDir: string, khz: number): Promise<number> {
  const started = performance.now();
  const child = spawn(
    "qemu-system-x86_64",
    [
      ...["-M", "microvm", "-accel", "tcg,tb-size=64", "-cpu", "max", "-m", "512M", "-smp", "1"],
      ...["-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio"],
      ...["-kernel", join(imageDir, "vmlinuz"), "-initrd", join(imageDir, "initrd.img")],
      ...["-append", `console=ttyS0 quiet panic=-1 tsc_early_khz=${khz} wrenn.debug=1 root=/dev/none`],
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("bare boot printed nothing from init within 60 s"));
    }, 60_000);
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("initramfs:")) {
        clearTimeout(timer);
        const ms = performance.now() - started;
        child.kill("SIGKILL");
        child.once("exit", () => resolve(ms));
      }
    });
  });
}

export async function run(ctx: SuiteContext): Promise<void> {
  const { readFileSync, realpathSync } = await import("node:fs");
  const imageDir = realpathSync(join(IMAGES_DIR, "base", "current"));
  const khz = tscKhz(readFileSync("/proc/cpuinfo", "utf8"));

  const bare: number[] = [];
  for (let i = 0; i < BOOTS; i++) {
    bare.push(await bareBootMs(imageDir, khz));
    ctx.log(`bare boot ${i + 1}/${BOOTS}: ${bare.at(-1)?.toFixed(0)} ms`);
  }
  ctx.measurements.record("bare QEMU boot to first line from init (floor)", "ms", bare);

  // Cold boots are what this suite measures: creates must not restore an image snapshot.
  const fx = await startAgent(
    { imageSnapshots: false },
    { dataDir: join(ctx.scratchDir, "agent") },
    { waitForImageSnapshot: false },
  );
  const { agent, client, token } = fx;

  try {
    const boots: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      let id = "";
      boots.push(
        await timeMs(async () => {
          id = (await client.createSandbox({ image: "base" })).sandbox?.sandboxId ?? "";
        }),
      );
      ctx.log(`cold boot ${i + 1}/${BOOTS}: ${boots.at(-1)?.toFixed(0)} ms`);
      await client.destroySandbox({ sandboxId: id });
    }
    ctx.measurements.record("cold boot to envd ready (agent CreateSandbox)", "ms", boots, {
      baseline: "bare QEMU boot to first line from init (floor)",
    });

    // A control plane with this agent as its host, so /v1 exec takes its real path.
    const cp = await createControlPlane({
      config: { port: 0, pgliteDir: "memory", heartbeatIntervalMs: 1000, reconcileIntervalMs: 2000 },
      logger: createSilentLogger(),
    });
    await cp.start();
    try {
      const key = (await bootstrapAdminTeam(cp.context)).apiKey.value;
      const call = jsonCaller(() => key);
      const api = (method: string, path: string, body?: unknown) => call(cp.url, method, path, body);
      const host = await api("POST", "/v1/hosts", { name: "bench", shared: true });
      await api("POST", "/v1/hosts/register", {
        token: host.body.registration_token,
        url: `http://127.0.0.1:${agent.port}`,
        agent_token: token,
      });
      const created = await api("POST", "/v1/sandboxes", { template: "base", timeout_sec: 3600 });
      if (created.status !== 201) throw new Error(`create failed: ${JSON.stringify(created.body)}`);
      const id = String(created.body.id);
      const record = agent.manager.get(id);
      const envd = createClient(
        Process,
        createConnectTransport({ baseUrl: `http://${record.hostIp}:49983`, httpVersion: "1.1" }),
      );
      const { trafficPort } = await client.ping({});
      const hop = guestThroughTraffic(trafficPort, token, id, record.envdAccessToken);
      const direct: number[] = [];
      const viaHop: number[] = [];
      const viaApi: number[] = [];
      for (let i = 0; i < EXEC_RUNS; i++) {
        direct.push(
          await timeMs(async () => {
            for await (const _ of envd.start(
              { process: { cmd: "/bin/bash", args: ["-l", "-c", "exec /bin/echo hi"] } },
              { headers: { "x-access-token": record.envdAccessToken } },
            )) {
            }
          }),
        );
        viaHop.push(await timeMs(() => hop.exec({ command: "exec /bin/echo hi" })));
        viaApi.push(
          await timeMs(async () => {
            const r = await api("POST", `/v1/sandboxes/${id}/exec`, { command: "exec /bin/echo hi" });
            if (r.status !== 200 || r.body.stdout !== "hi\n") {
              throw new Error(`/v1 exec failed: ${r.status} ${JSON.stringify(r.body)}`);
            }
          }),
        );
      }
      // All run the same `bash -l -c "exec /bin/echo hi"`, so each ratio is that path's overhead.
      ctx.measurements.record("echo via envd Process.Start, direct", "ms", direct);
      ctx.measurements.record("echo via the agent's traffic listener (envd protocol)", "ms", viaHop, {
        baseline: "echo via envd Process.Start, direct",
      });
      ctx.measurements.record("echo via /v1 exec (control plane)", "ms", viaApi, {
        baseline: "echo via envd Process.Start, direct",
      });
      await api("DELETE", `/v1/sandboxes/${id}`);
    } finally {
      await cp.stop();
    }
  } finally {
    await fx.close();
  }
}
