import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import type { HostAgentService } from "@wrenn/proto";
import { toConnectError, WrennError } from "@wrenn/shared";
import { OPEN_POLICY } from "@wrenn/shared/network-policy";
import type { SandboxManager } from "../sandbox/sandbox-manager.js";
import type { VolumeService } from "../volumes/volume-service.js";
import { networkPolicyOf, sandboxInfo, snapshotInfo, timeoutActionName } from "./sandbox-views.js";
import { createVolumeHandlers } from "./volume-handlers.js";

export interface HostAgentInfo {
  version: string;
  hostId: string;
  vmm: string;
  accel: string;
  accelReason: string;
  capacity: { vcpus: number; memoryMiB: number; diskMiB: number };
  /** Port of the sandbox traffic listener (0: none). */
  trafficPort: number;
  listImages(): Promise<string[]>;
  /** Resident memory of a VMM process, 0 when unknown. */
  vmmRssBytes(pid: number | undefined): Promise<number>;
  /** The host's volumes; undefined when volumes are off. */
  volumes?: VolumeService | undefined;
  /** Size of a volume created without one. */
  volumeDefaultSizeMiB?: number | undefined;
}

function requireId(id: string): string {
  if (!id) throw new WrennError("invalid_argument", "sandbox_id is required");
  return id;
}

/** Wraps every handler so a thrown WrennError leaves as a ConnectError carrying its code. */
function guard<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

/**
 * The HostAgentService handlers: thin calls into the sandbox manager (lifecycle,
 * snapshots, metrics, host facts). Guest operations do not pass through here: callers
 * reach envd through the traffic listener.
 */
export function createHostAgentService(
  manager: SandboxManager,
  info: HostAgentInfo,
): ServiceImpl<typeof HostAgentService> {
  return {
    ...createVolumeHandlers(info.volumes, info.volumeDefaultSizeMiB ?? 1024),

    ping: guard(async () => {
      const allocated = manager.allocated();
      return {
        version: info.version,
        hostId: info.hostId,
        vmm: info.vmm,
        accel: info.accel,
        accelReason: info.accelReason,
        capacity: {
          vcpus: info.capacity.vcpus,
          memoryMib: info.capacity.memoryMiB,
          diskMib: info.capacity.diskMiB,
        },
        allocated: { vcpus: allocated.vcpus, memoryMib: allocated.memoryMiB, diskMib: allocated.diskMiB },
        sandboxCount: manager.list().length,
        images: await info.listImages(),
        trafficPort: info.trafficPort,
      };
    }),

    createSandbox: guard(async (req) => {
      if (!req.image && !req.snapshot) {
        throw new WrennError("invalid_argument", "image or snapshot is required");
      }
      const record = await manager.create({
        sandboxId: req.sandboxId,
        image: req.image,
        snapshot: req.snapshot || undefined,
        resources: {
          vcpus: req.resources?.vcpus,
          memoryMiB: req.resources?.memoryMib,
          diskMiB: req.resources?.diskMib,
        },
        timeoutSec: req.timeoutSec,
        timeoutAction: timeoutActionName(req.timeoutAction),
        envVars: req.envVars,
        envdAccessToken: req.envdAccessToken,
        metadata: req.metadata,
        defaultUser: req.defaultUser,
        defaultWorkdir: req.defaultWorkdir,
        volumeMounts: req.volumeMounts.map((m) => ({ volumeId: m.volumeId, path: m.path })),
        teamId: req.teamId || undefined,
        networkPolicy: networkPolicyOf(req.networkPolicy),
      });
      return { sandbox: sandboxInfo(record) };
    }),

    pauseSandbox: guard(async (req) => {
      const paused = await manager.pause(requireId(req.sandboxId), { keepMemory: req.keepMemory });
      return {
        sandbox: sandboxInfo(paused.record),
        memoryBytesWritten: BigInt(paused.bytesWritten),
        generation: paused.generation,
      };
    }),

    resumeSandbox: guard(async (req) => ({
      sandbox: sandboxInfo(
        await manager.resume(requireId(req.sandboxId), req.timeoutSec || undefined, { reboot: req.reboot }),
      ),
    })),

    createSnapshot: guard(async (req) => {
      if (!req.name) throw new WrennError("invalid_argument", "name is required");
      const { snapshot, record } = await manager.snapshots.create(requireId(req.sandboxId), req.name, {
        leavePaused: req.leavePaused,
      });
      return { snapshot: snapshotInfo(snapshot, [record.id]), sandbox: sandboxInfo(record) };
    }),

    deleteSnapshot: guard(async (req) => {
      if (!req.name) throw new WrennError("invalid_argument", "name is required");
      await manager.snapshots.delete(req.name, req.force);
      return {};
    }),

    listSnapshots: guard(async () => ({
      snapshots: manager.snapshots
        .list()
        .map(({ snapshot, dependents }) => snapshotInfo(snapshot, dependents)),
    })),

    forkSandbox: guard(async (req) => {
      const forks = await manager.snapshots.fork(
        requireId(req.sandboxId),
        req.count,
        req.metadata,
        req.envdAccessTokens,
      );
      return { sandboxes: forks.map((f) => sandboxInfo(f)) };
    }),

    updateNetworkPolicy: guard(async (req) => {
      const policy = networkPolicyOf(req.networkPolicy) ?? OPEN_POLICY;
      return { sandbox: sandboxInfo(await manager.updateNetworkPolicy(requireId(req.sandboxId), policy)) };
    }),

    destroySandbox: guard(async (req) => {
      await manager.destroy(requireId(req.sandboxId));
      return {};
    }),

    listSandboxes: guard(async () => ({
      sandboxes: manager.list().map((r) => sandboxInfo(r, manager.isBusy(r.id))),
    })),

    getSandbox: guard(async (req) => {
      const id = requireId(req.sandboxId);
      return { sandbox: sandboxInfo(manager.get(id), manager.isBusy(id)) };
    }),

    pingSandbox: guard(async (req) => ({
      sandbox: sandboxInfo(manager.ping(requireId(req.sandboxId), req.timeoutSec || undefined)),
    })),

    getSandboxMetrics: guard(async (req) => {
      const id = requireId(req.sandboxId);
      // A metrics read (the control plane samples every sandbox) is not activity.
      const m = await manager.envdFor(id, false).metrics();
      const num = (k: string) => (typeof m[k] === "number" ? (m[k] as number) : 0);
      return {
        cpuCount: num("cpu_count"),
        cpuUsedPct: num("cpu_used_pct"),
        memTotalBytes: BigInt(Math.round(num("mem_total"))),
        memUsedBytes: BigInt(Math.round(num("mem_used"))),
        diskTotalBytes: BigInt(Math.round(num("disk_total"))),
        diskUsedBytes: BigInt(Math.round(num("disk_used"))),
        vmmRssBytes: BigInt(await info.vmmRssBytes(manager.vmmPid(id))),
        timestamp: timestampFromDate(new Date()),
      };
    }),
  };
}
