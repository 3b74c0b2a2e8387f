import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SandboxState, TimeoutAction } from "@wrenn/proto";
import type { SandboxRecord, SandboxStateName } from "../sandbox/sandbox-record.js";
import type { TemplateRecord } from "../sandbox/template-store.js";

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
    image: record.template,
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

export function snapshotInfo(template: TemplateRecord, dependents: string[]) {
  return {
    name: template.name,
    sourceSandboxId: template.sourceSandboxId,
    resources: {
      vcpus: template.resources.vcpus,
      memoryMib: template.resources.memoryMiB,
      diskMib: template.resources.diskMiB,
    },
    createdAt: timestampFromDate(new Date(template.createdAt)),
    dependents,
    image: template.baseTemplate,
  };
}
