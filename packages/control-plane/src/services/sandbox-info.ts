import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { SandboxInfo } from "@wrenn/proto";
import { SandboxState } from "@wrenn/proto";
import type { SandboxStateName } from "../db/schema.js";

/** The agent's view of a sandbox state in the control plane's names. */
export function stateFromAgent(state: SandboxState): SandboxStateName | null {
  switch (state) {
    case SandboxState.PENDING:
      return "pending";
    case SandboxState.RUNNING:
      return "running";
    case SandboxState.PAUSED:
      return "paused";
    case SandboxState.STOPPED:
      return "stopped";
    case SandboxState.ERROR:
      return "error";
    default:
      return null;
  }
}

/** Fields of a sandbox row the agent is the source of truth for. */
export function rowFieldsFromAgent(info: SandboxInfo | undefined): {
  host_ip?: string | null;
  expires_at?: Date | null;
  vcpus?: number;
  memory_mib?: number;
  disk_mib?: number;
  paused_without_memory?: boolean;
  network_policy?: string;
} {
  if (!info) return {};
  return {
    paused_without_memory: info.pausedWithoutMemory,
    host_ip: info.hostIp || null,
    expires_at: info.expiresAt ? timestampDate(info.expiresAt) : null,
    ...(info.resources?.vcpus ? { vcpus: info.resources.vcpus } : {}),
    ...(info.resources?.memoryMib ? { memory_mib: info.resources.memoryMib } : {}),
    ...(info.resources?.diskMib ? { disk_mib: info.resources.diskMib } : {}),
    // The policy in force is the agent's; an agent that reports none leaves the row's.
    ...(info.networkPolicy
      ? {
          network_policy: JSON.stringify({
            allowOut: info.networkPolicy.allowOut,
            denyOut: info.networkPolicy.denyOut,
          }),
        }
      : {}),
  };
}
