// Diagnostic (not committed): where an idle sandbox's CPU and memory go.
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { createHostAgent, parseAgentConfig } from "@wrenn/host-agent";
import { createSilentLogger } from "@wrenn/shared";
import { guestThroughTraffic } from "../../tests/e2e/agent-fixture.js";
import { agentClient } from "../lib/agent-client.js";
import { processPssMiB } from "../lib/proc-usage.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const threadTicks = (pid: number) => {
  const out = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const t = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
    const name = t.slice(t.indexOf("(") + 1, t.lastIndexOf(")"));
    const f = t.slice(t.lastIndexOf(")") + 2).split(" ");
    out.set(`${tid} ${name}`, Number(f[11]) + Number(f[12]));
  }
  return out;
};
function smapsTop(pid: number) {
  const text = readFileSync(`/proc/${pid}/smaps`, "utf8");
  const rows: { name: string; rss: number; pss: number; pd: number; sc: number }[] = [];
  let cur: { name: string; rss: number; pss: number; pd: number; sc: number } | undefined;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const size = (parseInt(head[2] ?? "0", 16) - parseInt(head[1] ?? "0", 16)) / 1048576;
      cur = { name: `${head[3] || "[anon]"} (${size.toFixed(0)}M)`, rss: 0, pss: 0, pd: 0, sc: 0 };
      rows.push(cur);
      continue;
    }
    const m = /^(Rss|Pss|Private_Dirty|Shared_Clean):\s+(\d+)/.exec(line);
    if (m && cur) {
      const v = Number(m[2]) / 1024;
      if (m[1] === "Rss") cur.rss = v;
      if (m[1] === "Pss") cur.pss = v;
      if (m[1] === "Private_Dirty") cur.pd = v;
      if (m[1] === "Shared_Clean") cur.sc = v;
    }
  }
  return rows
    .sort((a, b) => b.pss - a.pss)
    .slice(0, 8)
    .map(
      (r) =>
        `${r.pss.toFixed(1)} pss ${r.rss.toFixed(1)} rss ${r.pd.toFixed(1)} privdirty ${r.sc.toFixed(1)} sharedclean  ${r.name}`,
    );
}

const n = Number(process.env.DIAG_N ?? 2);
const token = randomBytes(24).toString("hex");
const agent = await createHostAgent(
  parseAgentConfig({
    dataDir: mkdtempSync(join(tmpdir(), "wrenn-diag-")),
    imagesDir: join(homedir(), ".wrenn", "images"),
    port: 0,
    hostToken: token,
    netNamePrefix: "wbx",
    firstSlot: 4200,
    maxSlots: 10,
    vcpuOvercommit: 8,
    ...(process.env.WRENN_TCG_TB_SIZE_MIB ? { tcgTbSizeMiB: Number(process.env.WRENN_TCG_TB_SIZE_MIB) } : {}),
  }),
  createSilentLogger(),
);
try {
  await agent.defaultImageSnapshot.ready;
  const client = agentClient(agent.port, token);
  const ids: string[] = [];
  for (let i = 0; i < n; i++)
    ids.push(
      (await client.createSandbox({ image: process.env.DIAG_IMAGE || "base", timeoutSec: 3600 })).sandbox
        ?.sandboxId ?? "",
    );
  const id = ids[0] ?? "";
  const pid = agent.manager.get(id).vmmPid ?? 0;
  const guest = guestThroughTraffic(agent.trafficPort, token, id, agent.manager.get(id).envdAccessToken);
  const sh = async (command: string) => {
    const r = await guest.exec({ command, user: "root" } as never);
    return new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  };
  console.log(
    await sh(
      "cat /proc/cmdline; cat /sys/devices/system/clocksource/clocksource0/current_clocksource /sys/devices/system/clockevents/clockevent0/current_device; grep -i hz /boot/config* 2>/dev/null | head; uname -r",
    ),
  );
  await sleep(20_000);
  const t0 = threadTicks(pid);
  await sleep(20_000);
  const t1 = threadTicks(pid);
  console.log("qemu threads, ticks in 20 s (1 tick = 10 ms):");
  for (const [k, v] of t1) console.log(`  ${k}: ${v - (t0.get(k) ?? v)}`);
  console.log("PSS", ids.map((i) => processPssMiB(agent.manager.get(i).vmmPid ?? 0)?.toFixed(1)).join(" "));
  console.log(smapsTop(pid).join("\n"));
  const census =
    "for p in /proc/[0-9]*; do echo \"$(basename $p) $(cat $p/comm) $(grep -h voluntary_ctxt_switches $p/status | awk '{s+=$2} END {print s}')\"; done";
  console.log(
    await sh(
      `${census} > /tmp/c0; grep -E 'LOC|TIMER|RCU' /proc/interrupts /proc/softirqs > /tmp/i0; sleep 20; ${census} > /tmp/c1; grep -E 'LOC|TIMER|RCU' /proc/interrupts /proc/softirqs > /tmp/i1; join /tmp/c0 /tmp/c1 | awk '{d=$5-$3; if (d>0) print d, $1, $2}' | sort -rn | head -15; paste /tmp/i0 /tmp/i1; cat /sys/devices/system/cpu/vulnerabilities/meltdown; grep -E '^ #[0-9]+:' /proc/timer_list | awk '{print $3}' | sort | uniq -c | sort -rn | head`,
    ),
  );
  const execMs: number[] = [];
  for (let i = 0; i < 8; i++) {
    const t = performance.now();
    await guest.exec({ command: "true" });
    execMs.push(performance.now() - t);
  }
  console.log("exec true ms:", execMs.map((x) => x.toFixed(0)).join(" "));
  console.log("PSS after execs", processPssMiB(pid)?.toFixed(1));
  console.log(smapsTop(pid).slice(0, 3).join("\n"));
} finally {
  await agent.close({ destroySandboxes: true });
}
