import { readFile, rm } from "node:fs/promises";
import type { Logger } from "@wrenn/shared";
import type { NetworkManager } from "../network/sandbox-network.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import { clearTimer } from "./inactivity-timers.js";
import type { SandboxEntry, SandboxVolumeAccess, SlotLeases } from "./sandbox-deps.js";

export interface ReleaseDeps {
  network: NetworkManager;
  slots: SlotLeases;
  disks: DiskLayerStore;
  volumes?: SandboxVolumeAccess | undefined;
  logger: Logger;
}

/** Frees what only a running VM holds (timer, envd client, process, network, slot); the disk layer stays. */
export async function releaseRuntime(deps: ReleaseDeps, entry: SandboxEntry): Promise<void> {
  const { record } = entry;
  clearTimer(entry);
  const vm = entry.vm;
  entry.vm = undefined;
  entry.envd?.close(`sandbox ${record.id} stopped`);
  entry.envd = undefined;
  if (vm) await vm.kill().catch((err: unknown) => deps.logger.error("kill VMM failed", { err }));
  else if (record.vmmPid) await killOrphanVmm(record.vmmPid, record.runDir);
  if (record.slot !== undefined) {
    // Before the network goes (which also destroys the server's connections to the slot).
    await deps.volumes?.revoke(record.slot);
    await deps.network.destroy(record.slot);
    await deps.slots.release(record.slot);
    record.slot = undefined;
    record.hostIp = undefined;
  }
  record.vmmPid = undefined;
}

/** Frees everything a VM held (runtime, disk layer, run dir); the record stays. */
export async function releaseVmResources(deps: ReleaseDeps, entry: SandboxEntry): Promise<void> {
  await releaseRuntime(deps, entry);
  const { record } = entry;
  await deps.disks.removeOverlay(record.id);
  record.overlayPath = undefined;
  await rm(record.runDir, { recursive: true, force: true });
}

/** Kills a VMM left from before a restart, but only if the pid still belongs to it (pids get reused). */
async function killOrphanVmm(pid: number, runDir: string): Promise<void> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline.includes(runDir)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  for (let i = 0; i < 100 && (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")) !== ""; i++) {
    await new Promise((r) => setTimeout(r, 20));
  }
}
