/**
 * Real microVMs, in one run: cold boot to envd ready through the host agent beside a bare
 * QEMU boot of the same kernel and initramfs to the first line its init prints (the floor),
 * and a command's round trip through the agent's Exec beside envd's Process.Start direct.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { homedir } from "node:os";
import { join } from "node:path";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createHostAgent, parseAgentConfig } from "@wrenn/host-agent";
import { Process } from "@wrenn/proto";
import { createSilentLogger } from "@wrenn/shared";
import { agentClient } from "../lib/agent-client.js";
import type { SuiteContext } from "../lib/suite.js";
import { timeMs } from "../lib/timing.js";

export const name = "vm";

const BOOTS = 5;
const EXEC_RUNS = 30;

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
  const imagesDir = join(process.env.WRENN_DIR || join(homedir(), ".wrenn"), "images");
  const imageDir = realpathSync(join(imagesDir, "base", "current"));
  const khz = tscKhz(readFileSync("/proc/cpuinfo", "utf8"));

  const bare: number[] = [];
  for (let i = 0; i < BOOTS; i++) {
    bare.push(await bareBootMs(imageDir, khz));
    ctx.log(`bare boot ${i + 1}/${BOOTS}: ${bare.at(-1)?.toFixed(0)} ms`);
  }
  ctx.measurements.record("bare QEMU boot to first line from init (floor)", "ms", bare);

  const token = randomBytes(24).toString("hex");
  const agent = await createHostAgent(
    // Cold boots are what this suite measures: creates must not restore an image snapshot.
    parseAgentConfig({
      dataDir: join(ctx.scratchDir, "agent"),
      imagesDir,
      port: 0,
      hostToken: token,
      imageSnapshots: false,
    }),
    createSilentLogger(),
  );
  const client = agentClient(agent.port, token);

  try {
    const boots: number[] = [];
    for (let i = 0; i < BOOTS; i++) {
      let id = "";
      boots.push(
        await timeMs(async () => {
          id = (await client.createSandbox({ template: "base" })).sandbox?.sandboxId ?? "";
        }),
      );
      ctx.log(`cold boot ${i + 1}/${BOOTS}: ${boots.at(-1)?.toFixed(0)} ms`);
      await client.destroySandbox({ sandboxId: id });
    }
    ctx.measurements.record("cold boot to envd ready (agent CreateSandbox)", "ms", boots, {
      baseline: "bare QEMU boot to first line from init (floor)",
    });

    const { sandbox } = await client.createSandbox({ template: "base" });
    const id = sandbox?.sandboxId ?? "";
    const record = agent.manager.get(id);
    const envd = createClient(
      Process,
      createConnectTransport({ baseUrl: `http://${record.hostIp}:49983`, httpVersion: "1.1" }),
    );
    const direct: number[] = [];
    const viaAgent: number[] = [];
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
      viaAgent.push(
        await timeMs(() => client.exec({ sandboxId: id, process: { command: "exec /bin/echo hi" } })),
      );
    }
    // Both run the same `bash -l -c "exec /bin/echo hi"`, so the ratio is the agent's overhead.
    ctx.measurements.record("echo via envd Process.Start, direct", "ms", direct);
    ctx.measurements.record("echo via agent Exec", "ms", viaAgent, {
      baseline: "echo via envd Process.Start, direct",
    });
    await client.destroySandbox({ sandboxId: id });
  } finally {
    await agent.close({ destroySandboxes: true });
  }
}
