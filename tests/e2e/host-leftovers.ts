import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { TEST_NET_PREFIX } from "./agent-fixture.js";

/** What a sandbox could leave on this host; every list must be empty after cleanup. */
export interface HostLeftovers {
  qemuProcesses: string[];
  namespaces: string[];
  links: string[];
  iptablesRules: string[];
  sandboxDirs: string[];
  slotLeases: string[];
}

/** QEMU processes whose command line contains `needle`: pid and the start of the command line. */
export function qemuProcessesMatching(needle: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (cmdline.startsWith("qemu-system") && cmdline.includes(needle))
      found.push({ pid: Number(pid), cmdline: cmdline.slice(0, 120) });
  }
  return found;
}

/**
 * Lists everything a host agent with this data dir (and its slots) might have left behind;
 * `prefix` is the agent's network name prefix.
 */
export function findHostLeftovers(dataDir: string, prefix = TEST_NET_PREFIX): HostLeftovers {
  const netns = execFileSync("ip", ["netns", "list"], { encoding: "utf8" });
  const links = execFileSync("ip", ["-o", "link", "show"], { encoding: "utf8" });
  const rules = execFileSync("iptables-save", [], { encoding: "utf8" });
  const sandboxesDir = join(dataDir, "sandboxes");
  const leasesPath = join(dataDir, "slots.json");
  let leases: string[] = [];
  if (existsSync(leasesPath)) {
    const parsed = JSON.parse(readFileSync(leasesPath, "utf8")) as unknown;
    const table = (parsed as { leases?: Record<string, unknown> }).leases ?? parsed;
    leases = Object.keys(table as Record<string, unknown>);
  }
  return {
    qemuProcesses: qemuProcessesMatching(dataDir).map((p) => `${p.pid}: ${p.cmdline}`),
    namespaces: netns.split("\n").filter((l) => l.startsWith(`${prefix}-ns-`)),
    links: links.split("\n").filter((l) => new RegExp(`\\b${prefix}-(vh|vn)`).test(l)),
    iptablesRules: rules.split("\n").filter((l) => l.includes(`${prefix}-slot-`)),
    sandboxDirs: existsSync(sandboxesDir) ? readdirSync(sandboxesDir) : [],
    slotLeases: leases,
  };
}

export const NO_LEFTOVERS: HostLeftovers = {
  qemuProcesses: [],
  namespaces: [],
  links: [],
  iptablesRules: [],
  sandboxDirs: [],
  slotLeases: [],
};
