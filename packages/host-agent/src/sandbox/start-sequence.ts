import { mkdir } from "node:fs/promises";
import { type Logger, WrennError } from "@wrenn/shared";
import type { GuestImage } from "../images/image-catalog.js";
import {
  type NetworkManager,
  type SandboxNetwork,
  SlotAddressesTakenError,
} from "../network/sandbox-network.js";
import type { MemorySnapshotStore, RestorePlan } from "../snapshot/memory-store.js";
import type { BaseImageFormat, DiskLayerStore } from "../storage/disk-layer.js";
import type { VmHandle, VmmDriver } from "../vmm/vmm-driver.js";
import type { EnvdConnector } from "./envd-connector.js";
import type { InactivityTimers } from "./inactivity-timers.js";
import type { SandboxEntry, SandboxVolumeAccess, SlotLeases } from "./sandbox-deps.js";
import type { SandboxRecord, SandboxRecordStore } from "./sandbox-record.js";
import { UndoStack } from "./undo-stack.js";
import { sandboxVmSpec } from "./vm-spec.js";

export interface StartSequenceDeps {
  driver: VmmDriver;
  network: NetworkManager;
  slots: SlotLeases;
  disks: DiskLayerStore;
  records: SandboxRecordStore;
  memory: MemorySnapshotStore;
  envd: EnvdConnector;
  timers: InactivityTimers;
  volumes?: SandboxVolumeAccess | undefined;
  logger: Logger;
  now: () => Date;
  /** Starts watching a running VM for an exit nobody asked for. */
  watchExit(entry: SandboxEntry, vm: VmHandle): void;
}

/** What to start a sandbox from. */
export interface StartPlan {
  image: Pick<GuestImage, "kernelPath" | "initrdPath" | "kernelArgs">;
  /** Restore this memory snapshot (the VM comes back as it was saved); absent: cold boot. */
  memorySnapshot?: string | undefined;
  /**
   * A new sandbox: its record is saved first (and removed on failure), it gets a new disk layer
   * over this base, and envd mounts `mountVolumes` once it runs (a clone's inherited volumes are
   * mounted in its snapshot's memory already).
   */
  create?:
    | {
        diskBasePath: string;
        diskBaseFormat?: BaseImageFormat | undefined;
        mountVolumes?: ReadonlyArray<{ volumeId: string; path: string }> | undefined;
      }
    | undefined;
  /** The envd token the guest holds until /init (a clone's: its snapshot's); default the record's. */
  guestToken?: string | undefined;
  /** A new inactivity timeout, taken once the sandbox runs. */
  timeoutSec?: number | undefined;
  /** Called after unwinding when the memory snapshot cannot be used (missing, or failing its checks). */
  onUnrestorable?: ((err: unknown) => Promise<void>) | undefined;
}

/** The steps of a start, in order (named in logs). */
export type StartStep =
  | "record"
  | "restore-plan"
  | "network"
  | "disk"
  | "vm"
  | "vcpus"
  | "envd-ready"
  | "envd-init"
  | "running";

/**
 * The one way a sandbox's VM starts, for create, resume, and clones of named snapshots
 * (fork): record → restore plan → slot and network → disk layer → boot or restore → vCPUs →
 * envd ready → envd init → running (record saved, exit watch, inactivity timer). Each step
 * that makes something pushes its undo, so a failure at any step leaves nothing behind: a new
 * sandbox's record is gone, an existing one's is back as it was.
 */
export class StartSequence {
  constructor(private readonly deps: StartSequenceDeps) {}

  /**
   * Starts the entry's VM; resolves once the sandbox runs. Returns the restore's injected
   * bytes and how long each step took (ms, for logs).
   */
  async run(
    entry: SandboxEntry,
    plan: StartPlan,
  ): Promise<{ injectedBytes: number; stepMs: Partial<Record<StartStep, number>> }> {
    const { deps } = this;
    const { record } = entry;
    const undo = new UndoStack();
    const log = deps.logger.child({ sandbox: record.id });
    let step: StartStep = "record";
    let unrestorable = false;
    const stepMs: Partial<Record<StartStep, number>> = {};
    let stepStarted = performance.now();
    const enter = (next: StartStep) => {
      const now = performance.now();
      stepMs[step] = Math.round(now - stepStarted);
      stepStarted = now;
      step = next;
    };
    try {
      if (plan.create) {
        // The record goes to disk first and after every step, so a crash mid-start can be undone.
        await deps.records.save(record);
        undo.push("record", () => deps.records.remove(record.id));
      }

      enter("restore-plan");
      let restore: RestorePlan | undefined;
      if (plan.memorySnapshot) {
        restore = await deps.memory.planRestore(plan.memorySnapshot).catch((err: unknown) => {
          unrestorable = true;
          throw err;
        });
      }

      enter("network");
      const network = await this.attachNetwork(record, undo, log);

      enter("disk");
      if (plan.create) {
        record.overlayPath = await deps.disks.createOverlay(
          record.id,
          plan.create.diskBasePath,
          record.resources.diskMiB,
          plan.create.diskBaseFormat ? { baseFormat: plan.create.diskBaseFormat } : {},
        );
        undo.push("disk", async () => {
          await deps.disks.removeOverlay(record.id);
          record.overlayPath = undefined;
        });
      }
      await mkdir(record.runDir, { recursive: true });

      enter("vm");
      const spec = sandboxVmSpec(record, network, plan.image);
      const vm = restore
        ? await deps.driver
            .restore(spec, {
              memoryFile: restore.baseFile,
              deviceStateFile: restore.deviceStateFile,
              pages: restore.pages,
            })
            .catch((err: unknown) => {
              if (err instanceof WrennError && err.code === "snapshot_corrupt") unrestorable = true;
              throw err;
            })
        : await deps.driver.boot(spec);
      entry.vm = vm;
      undo.push("vm", async () => {
        await vm.kill();
        entry.vm = undefined;
        record.vmmPid = undefined;
      });
      record.vmmPid = vm.pid;
      await deps.records.save(record);

      enter("vcpus");
      // A restored VM comes back paused.
      if (restore) await vm.resumeVcpus();

      enter("envd-ready");
      const envd = deps.envd.client(record);
      undo.push("envd", async () => {
        envd.close(`sandbox ${record.id} failed to start`);
        entry.envd = undefined;
      });
      // A restored guest's envd is already running: its /init goes at once (retried until it
      // answers) instead of after a /health round trip.
      if (!restore) await deps.envd.waitReady(envd, vm, record);

      enter("envd-init");
      const guestToken = plan.guestToken ?? record.envdAccessToken;
      const initClient = guestToken !== record.envdAccessToken ? deps.envd.client(record, guestToken) : envd;
      try {
        await deps.envd.init(initClient, envd, record, restore !== undefined, vm);
      } finally {
        if (initClient !== envd) initClient.close("init done");
      }

      // A new sandbox mounts the volumes asked for now; a resumed one or a clone has its mounts
      // in its memory (its NFS client reconnects to the same gateway address on its own).
      const mountNow = plan.create?.mountVolumes ?? [];
      if (mountNow.length > 0) await envd.mountVolumes(mountNow);

      enter("running");
      const before = {
        state: record.state,
        pausedAt: record.pausedAt,
        timeoutSec: record.timeoutSec,
        expiresAt: record.expiresAt,
      };
      undo.push("running", async () => Object.assign(record, before));
      entry.envd = envd;
      record.state = "running";
      record.pausedAt = undefined;
      if (plan.timeoutSec) record.timeoutSec = plan.timeoutSec;
      record.expiresAt = new Date(deps.now().getTime() + record.timeoutSec * 1000).toISOString();
      await deps.records.save(record);
      undo.clear();
      deps.watchExit(entry, vm);
      deps.timers.arm(entry);
      enter("running");
      return { injectedBytes: restore?.injectedBytes ?? 0, stepMs };
    } catch (err) {
      log.warn("sandbox start failed, unwinding", { step, err });
      await undo.unwind(log);
      if (!plan.create) await deps.records.save(record).catch(() => {});
      if (unrestorable && plan.onUnrestorable) await plan.onUnrestorable(err);
      throw WrennError.from(err);
    }
  }

  /** Lets the slot mount the sandbox's volumes, before any vCPU of it runs. */
  private async grantVolumes(
    record: SandboxRecord,
    slot: number,
    network: SandboxNetwork,
    undo: UndoStack,
  ): Promise<void> {
    const ids = record.volumeMounts?.map((m) => m.volumeId) ?? [];
    if (ids.length === 0) return;
    const volumes = this.deps.volumes;
    if (!volumes) throw new WrennError("failed_precondition", "volumes are not enabled on this host");
    undo.push("volumes", () => volumes.revoke(slot));
    await volumes.grant(slot, network.vethNsIp, ids);
  }

  /**
   * Leases a slot and builds its network; both are undone by `undo` on failure. A slot whose
   * addresses something else on the host holds is set aside and the next one tried.
   */
  private async attachNetwork(record: SandboxRecord, undo: UndoStack, log: Logger): Promise<SandboxNetwork> {
    const { deps } = this;
    for (;;) {
      const slot = await deps.slots.acquire(record.id);
      record.slot = slot;
      let network: SandboxNetwork;
      try {
        await deps.records.save(record);
        network = await deps.network.create(slot, record.networkPolicy);
      } catch (err) {
        record.slot = undefined;
        if (!(err instanceof SlotAddressesTakenError)) {
          await deps.slots.release(slot);
          throw err;
        }
        // Not ours to touch: skip the slot (acquire runs out with no_capacity eventually).
        log.warn("network slot held by something else on the host; skipping it", {
          slot,
          holders: err.holders,
        });
        await deps.slots.setAside(slot);
        continue;
      }
      undo.push("slot", async () => {
        await deps.slots.release(slot);
        record.slot = undefined;
      });
      undo.push("network", async () => {
        await deps.network.destroy(slot);
        record.hostIp = undefined;
      });
      record.hostIp = network.hostReachableIp;
      await deps.records.save(record);
      await this.grantVolumes(record, slot, network, undo);
      return network;
    }
  }
}
