import { readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger } from "@wrenn/shared";
import { VmmCgroups } from "../packages/host-agent/src/host-cgroups/vmm-cgroups.js";
import { NetnsNetworkManager } from "../packages/host-agent/src/network/netns-network.js";

/**
 * Network/cgroup name prefixes the suite's agents use (tests/e2e fixtures, the network and
 * make-up tests). Never "wrenn": that is a live agent's, and the suite must not touch it.
 */
export const TEST_NET_PREFIXES = ["wt", "wa", "wb", "we", "wsn", "wsf", "wsdk", "wup", "wrtst"] as const;

/** QEMU processes started by an earlier test run: their command line names a test temp dir. */
function strayTestVmms(): number[] {
  const testDirs = join(tmpdir(), "wrenn-");
  const pids: number[] = [];
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    let cmdline = "";
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
    } catch {
      continue;
    }
    if (cmdline.startsWith("qemu-system") && cmdline.includes(testDirs)) pids.push(Number(pid));
  }
  return pids;
}

/**
 * Vitest global setup: removes what an interrupted earlier run of this suite left on the
 * host (killed mid-test, its VMs, namespaces, rules and cgroups stay). Without this a
 * leftover keeps its slot's addresses and burns CPU under the next run. It touches only
 * test prefixes and test temp dirs, and runs before any test: the suite's own cleanup is
 * still checked by every test's leftover assertions.
 */
export default async function sweepTestLeftovers(): Promise<void> {
  if (process.getuid?.() !== 0) return;
  const logger = createSilentLogger();
  const swept: string[] = [];
  for (const pid of strayTestVmms()) {
    try {
      process.kill(pid, "SIGKILL");
      swept.push(`qemu pid ${pid}`);
    } catch {
      // already gone
    }
  }
  for (const prefix of TEST_NET_PREFIXES) {
    const cgroups = VmmCgroups.detect(logger, undefined, prefix);
    for (const id of await cgroups.list()) {
      for (const pid of await cgroups.pids(id)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await cgroups.remove(id);
      swept.push(`cgroup ${prefix}/${id}`);
    }
    await cgroups.removeParent().catch(() => {});
    const network = new NetnsNetworkManager(logger, { namePrefix: prefix });
    const slots = await network.sweep(new Set());
    if (slots.length > 0) swept.push(`${prefix} network slots ${slots.join(",")}`);
    await network.teardownHostRules();
  }
  if (swept.length > 0) {
    console.log(`test setup: removed what an interrupted earlier test run left: ${swept.join("; ")}`);
  }
}
