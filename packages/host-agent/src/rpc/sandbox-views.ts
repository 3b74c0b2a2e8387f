import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SandboxState, TimeoutAction } from "@wrenn/proto";
import type { SandboxRecord, SandboxStateName } from "../sandbox/sandbox-record.js";
import type { SnapshotRecord } from "../sandbox/snapshot-store.js";

/** The agent's records as the RPC's SandboxInfo and SnapshotInfo messages. */
const STATE: Record<SandboxStateName, SandboxState> = {
  pending: SandboxState.PENDING,
  running: SandboxState.RUNNING,
  paused: SandboxState.PAUSED,
  stopped: SandboxState.STOPPED,
  error: SandboxState.ERROR,
};

export function sandboxInfo(record: SandboxRecord, busy = false) {
  return {
    busy,
    sandboxId: record.id,
    image: record.image,
    state: STATE[record.state],
    resources: {
      vcpus: record.resources.vcpus,
      memoryMib: record.resources.memoryMiB,
      diskMib: record.resources.diskMiB,
    },
    createdAt: timestampFromDate(new Date(record.createdAt)),
    expiresAt: timestampFromDate(new Date(record.expiresAt)),
    timeoutSec: record.timeoutSec,
    timeoutAction: record.timeoutAction === "pause" ? TimeoutAction.PAUSE : TimeoutAction.DESTROY,
    metadata: record.metadata,
    hostIp: record.hostIp ?? "",
    slot: record.slot ?? 0,
    error: record.error ?? "",
    vmmPid: record.vmmPid ?? 0,
  };
}

export function snapshotInfo(snapshot: SnapshotRecord, dependents: string[]) {
  return {
    name: snapshot.name,
    sourceSandboxId: snapshot.sourceSandboxId,
    resources: {
      vcpus: snapshot.resources.vcpus,
      memoryMib: snapshot.resources.memoryMiB,
      diskMib: snapshot.resources.diskMiB,
    },
    createdAt: timestampFromDate(new Date(snapshot.createdAt)),
    dependents,
    image: snapshot.image,
  };
}
