import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger } from "@wrenn/shared";
import { VmmCgroups } from "../packages/host-agent/src/host-cgroups/vmm-cgroups.js";
import { NetnsNetworkManager } from "../packages/host-agent/src/network/netns-network.js";
import { qemuProcessesMatching } from "./e2e/host-leftovers.js";
import { sweepFaultInjections } from "./faults/host-injectors.js";

/**
 * Network/cgroup name prefixes the suite's agents use (tests/e2e fixtures, the network and
 * make-up tests). Never "wrenn": that is a live agent's, and the suite must not touch it.
 */
export const TEST_NET_PREFIXES = [
  "wt",
  "wen",
  "wa",
  "wb",
  "we",
  "wsn",
  "wsf",
  "wsdk",
  "wvol",
  "wvole",
  "wvolr",
  "wvols",
  "wsvl",
  "wup",
  "wrtst",
  "wregs",
  "wege",
  "wnp",
  "wis",
  "wisc",
  "wq",
  "wqa",
  "wqb",
  "wbb",
  "wreg",
  "wfd",
  "wfp",
  "wadm",
  "wmh",
  // the browser tests, and the dashboard pages' manual checks against a real VM
  "wbr",
  "wbs",
  "wdsb",
  // benchmark suites' agents
  "wbc",
  "wbd",
  "wbe",
  "wbn",
  "wbt",
  "wh",
  // the reconciler-repair and fault suites
  "wflt",
] as const;

/** Held (as a pid file) by the test run in progress on this machine, if any. */
const RUN_LOCK = join(tmpdir(), "wrenn-test-run.pid");

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Takes the run lock; false when another live run holds it. A dead run's lock is taken over. */
function takeRunLock(): boolean {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(RUN_LOCK, String(process.pid), { flag: "wx" });
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const holder = Number(readFileSync(RUN_LOCK, "utf8").trim());
      if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return false;
      rmSync(RUN_LOCK, { force: true });
    }
  }
  return false;
}

/**
 * Marks a run of VMs that is not a vitest run (a benchmark) as in progress, so no test
 * run's setup sweeps its VMs as leftovers meanwhile. Returns the release, or undefined
 * when another live run holds the lock.
 */
export function holdTestRunLock(): (() => void) | undefined {
  if (!takeRunLock()) return undefined;
  return () => {
    if (existsSync(RUN_LOCK) && readFileSync(RUN_LOCK, "utf8").trim() === String(process.pid))
      rmSync(RUN_LOCK);
  };
}

/**
 * Vitest global setup: removes what an interrupted earlier run of this suite left on the
 * host (killed mid-test, its VMs, namespaces, rules and cgroups stay). Without this a
 * leftover keeps its slot's addresses and burns CPU under the next run. It touches only
 * test prefixes and test temp dirs, and runs before any test: the suite's own cleanup is
 * still checked by every test's leftover assertions. While another run is in progress on
 * this machine (its lock is held by a live process) nothing is swept.
 */
export default async function sweepTestLeftovers(): Promise<(() => void) | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  if (!takeRunLock()) {
    console.log("test setup: another test run is in progress on this machine; not sweeping leftovers");
    return undefined;
  }
  const release = () => {
    if (existsSync(RUN_LOCK) && readFileSync(RUN_LOCK, "utf8").trim() === String(process.pid))
      rmSync(RUN_LOCK);
  };
  const logger = createSilentLogger();
  const swept: string[] = [];
  // An earlier run's VMs: their command lines name a test temp dir.
  for (const { pid } of qemuProcessesMatching(join(tmpdir(), "wrenn-"))) {
    try {
      process.kill(pid, "SIGKILL");
      swept.push(`qemu pid ${pid}`);
    } catch {
      // already gone
    }
  }
  for (const prefix of TEST_NET_PREFIXES) {
    const cgroups = VmmCgroups.detect(logger, undefined, prefix);
    for (const id of await cgroups.reapStray(new Set())) swept.push(`cgroup ${prefix}/${id}`);
    await cgroups.removeParent().catch(() => {});
    const network = new NetnsNetworkManager(logger, { namePrefix: prefix });
    const slots = await network.sweep(new Set());
    if (slots.length > 0) swept.push(`${prefix} network slots ${slots.join(",")}`);
    await network.teardownHostRules();
  }
  swept.push(...sweepFaultInjections());
  if (swept.length > 0) {
    console.log(`test setup: removed what an interrupted earlier test run left: ${swept.join("; ")}`);
  }
  return release;
}
