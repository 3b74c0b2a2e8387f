import type { Logger } from "@wrenn/shared";
import type { ImageCatalog } from "../images/image-catalog.js";
import { TAP_NAME } from "../network/sandbox-network.js";
import type { VmHandle, VmmDriver } from "../vmm/vmm-driver.js";
import type { EnvdConnector } from "./envd-connector.js";
import type { InactivityTimers } from "./inactivity-timers.js";
import { newEntry, type SandboxEntry } from "./sandbox-deps.js";
import type { SandboxRecord, SandboxRecordStore } from "./sandbox-record.js";
import { type ReleaseDeps, releaseRuntime, releaseVmResources } from "./sandbox-release.js";
import { sandboxVmSpec } from "./vm-spec.js";

export interface RecoveryDeps {
  driver: VmmDriver;
  images: ImageCatalog;
  records: SandboxRecordStore;
  release: ReleaseDeps;
  envd: EnvdConnector;
  timers: InactivityTimers;
  logger: Logger;
  /** Puts a kept sandbox into the registry. */
  register(entry: SandboxEntry): void;
  watchExit(entry: SandboxEntry, vm: VmHandle): void;
}

/**
 * After an agent restart: re-adopts VMs that still run, keeps paused sandboxes (freeing what a
 * crash mid-pause left), marks running ones whose VM died `error`, and removes the records of
 * sandboxes that never finished starting. Returns the ids kept and the ids cleaned away.
 */
export async function recoverSandboxes(
  deps: RecoveryDeps,
): Promise<{ adopted: string[]; cleaned: string[] }> {
  const { records, unreadable } = await deps.records.loadAll();
  const adopted: string[] = [];
  const cleaned: string[] = [];
  for (const id of unreadable) {
    await deps.records.remove(id);
    cleaned.push(id);
  }
  const cleanupFailed = (record: SandboxRecord) => (err: unknown) =>
    deps.logger.error("recovery cleanup failed", { sandbox: record.id, err });
  for (const record of records) {
    const entry = newEntry(record);
    if (record.internal) {
      // An image snapshot build the restart interrupted: the next create builds it again.
      await releaseVmResources(deps.release, entry).catch(cleanupFailed(record));
      await deps.records.remove(record.id);
      cleaned.push(record.id);
      continue;
    }
    if (record.state === "paused") {
      // Paused: no VM by design. A crash mid-pause may have left the VMM and its slot.
      await releaseRuntime(deps.release, entry).catch(cleanupFailed(record));
      await deps.records.save(record);
      deps.register(entry);
      adopted.push(record.id);
      continue;
    }
    const vm = await adoptVm(deps, record);
    if (vm && !(await runVcpus(deps, record, vm))) {
      // Neither running nor stopped by a pause (an incoming restore the crash cut short): not usable.
      await vm.kill().catch(cleanupFailed(record));
    } else if (vm) {
      entry.vm = vm;
      entry.envd = deps.envd.client(record);
      deps.register(entry);
      deps.watchExit(entry, vm);
      deps.timers.arm(entry);
      adopted.push(record.id);
      continue;
    }
    // A sandbox half-created or whose VM died while the agent was away: free everything.
    await releaseVmResources(deps.release, entry).catch(cleanupFailed(record));
    if (record.state === "running") {
      record.state = "error";
      record.error = "VMM exited while the host agent was down";
      deps.register(entry);
      await deps.records.save(record);
    } else {
      await deps.records.remove(record.id);
      cleaned.push(record.id);
    }
  }
  return { adopted, cleaned };
}

/**
 * Makes an adopted VM's vCPUs run: a crash in the middle of a pause or a snapshot leaves them
 * stopped (and envd quiesced, its port forwarding off) with the record still `running`, so
 * they are started again and envd gets its /init. False when the VM is in no state to run.
 */
async function runVcpus(deps: RecoveryDeps, record: SandboxRecord, vm: VmHandle): Promise<boolean> {
  const state = await vm.runState().catch(() => "other" as const);
  if (state === "running") return true;
  if (state !== "paused") return false;
  const envd = deps.envd.client(record);
  try {
    await vm.resumeVcpus();
    await deps.envd.init(envd, envd, record, false, vm);
    deps.logger.info("adopted VM had its vCPUs stopped (a crash mid-pause); running again", {
      sandbox: record.id,
    });
    return true;
  } catch (err) {
    deps.logger.error("adopted VM could not run again", { sandbox: record.id, err });
    return false;
  } finally {
    envd.close("recovery /init done");
  }
}

/** The VMM of a running sandbox's record, if it still runs (null when gone or not ours). */
async function adoptVm(deps: RecoveryDeps, record: SandboxRecord): Promise<VmHandle | null> {
  if (record.state !== "running" || !record.vmmPid || record.slot === undefined || !record.hostIp)
    return null;
  const image = await deps.images.get(record.image).catch(() => null);
  if (!image) return null;
  const network = {
    netnsName: deps.release.network.netnsName(record.slot),
    tapName: TAP_NAME,
    guestMac: "",
  };
  return deps.driver.adopt(sandboxVmSpec(record, network, image), record.vmmPid).catch(() => null);
}
