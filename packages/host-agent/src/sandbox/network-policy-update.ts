import { WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { SandboxManagerDeps } from "./sandbox-deps.js";
import type { SandboxRecord } from "./sandbox-record.js";

/**
 * Replaces a running or paused sandbox's egress policy (the caller holds its lock). The
 * record is saved first: an agent that restarts re-applies what the record holds, so the
 * record never holds less than the rules enforce; rules that fail to apply put the old
 * policy back. A paused sandbox's rules follow at resume.
 */
export async function replaceNetworkPolicy(
  deps: Pick<SandboxManagerDeps, "network" | "records">,
  record: SandboxRecord,
  policy: NetworkPolicy,
): Promise<void> {
  const live = record.state === "running" && record.slot !== undefined;
  if (!live && record.state !== "paused") {
    throw new WrennError(
      "failed_precondition",
      `sandbox ${record.id} is ${record.state}; only a running or paused sandbox's policy can change`,
    );
  }
  const previous = record.networkPolicy;
  record.networkPolicy = { allowOut: [...policy.allowOut], denyOut: [...policy.denyOut] };
  await deps.records.save(record);
  if (!live || record.slot === undefined) return;
  try {
    await deps.network.applyPolicy(record.slot, policy);
  } catch (err) {
    record.networkPolicy = previous;
    await deps.records.save(record);
    throw err;
  }
}
