import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SandboxState, TimeoutAction } from "@wrenn/proto";
import { type NetworkPolicy, parseNetworkPolicy } from "@wrenn/shared/network-policy";
import type { SandboxRecord, SandboxStateName, TimeoutActionName } from "../sandbox/sandbox-record.js";
import type { SnapshotRecord } from "../sandbox/snapshot-store.js";

/** The agent's records as the RPC's SandboxInfo and SnapshotInfo messages. */
const STATE: Record<SandboxStateName, SandboxState> = {
  pending: SandboxState.PENDING,
  running: SandboxState.RUNNING,
  paused: SandboxState.PAUSED,
  stopped: SandboxState.STOPPED,
  error: SandboxState.ERROR,
};

const TIMEOUT_ACTION: Record<TimeoutActionName, TimeoutAction> = {
  destroy: TimeoutAction.DESTROY,
  pause: TimeoutAction.PAUSE,
  "pause-filesystem": TimeoutAction.PAUSE_FILESYSTEM,
};

/** A create's timeout action in the agent's names (unset: pause). */
export function timeoutActionName(action: TimeoutAction): TimeoutActionName {
  if (action === TimeoutAction.DESTROY) return "destroy";
  if (action === TimeoutAction.PAUSE_FILESYSTEM) return "pause-filesystem";
  return "pause";
}

/** A stored policy as the NetworkPolicy message (always set; empty lists: open). */
function policyView(policy: NetworkPolicy | undefined) {
  return { allowOut: [...(policy?.allowOut ?? [])], denyOut: [...(policy?.denyOut ?? [])] };
}

/**
 * A request's NetworkPolicy, normalised; undefined when unset. Malformed entries are
 * invalid_argument with the problem (bad_cidr, domain_needs_deny_all, ...) in the message.
 */
export function networkPolicyOf(
  message: { allowOut: readonly string[]; denyOut: readonly string[] } | undefined,
): NetworkPolicy | undefined {
  return message ? parseNetworkPolicy({ allowOut: message.allowOut, denyOut: message.denyOut }) : undefined;
}

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
    timeoutAction: TIMEOUT_ACTION[record.timeoutAction],
    metadata: record.metadata,
    hostIp: record.hostIp ?? "",
    slot: record.slot ?? 0,
    error: record.error ?? "",
    vmmPid: record.vmmPid ?? 0,
    pausedWithoutMemory: record.pausedWithoutMemory === true,
    networkPolicy: policyView(record.networkPolicy),
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
    networkPolicy: policyView(snapshot.networkPolicy),
  };
}
