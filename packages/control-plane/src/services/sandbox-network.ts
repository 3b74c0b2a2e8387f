import { randomBytes } from "node:crypto";
import { WrennError } from "@wrenn/shared";
import { ALL_IPV4, type NetworkPolicy } from "@wrenn/shared/network-policy";
import type { Principal } from "../auth/principal.js";
import type { SandboxRow } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { auditSandbox } from "./sandbox-audit.js";
import { rowFieldsFromAgent } from "./sandbox-info.js";
import type { ServiceDeps } from "./service-deps.js";

/**
 * A sandbox's network settings at create. `policy` unset: a sandbox from a snapshot template
 * keeps the template's policy, one from an image is open.
 */
export interface SandboxNetworkInput {
  policy?: NetworkPolicy | undefined;
  /** False: traffic through the proxy needs the sandbox's traffic access token. Default true. */
  allowPublicTraffic?: boolean | undefined;
  /** Host header proxied requests get; `${PORT}` becomes the target port. */
  maskRequestHost?: string | undefined;
}

/** A new traffic access token (private public traffic), or null for a public sandbox. */
export function trafficTokenFor(allowPublicTraffic: boolean | undefined): string | null {
  return allowPublicTraffic === false ? randomBytes(24).toString("hex") : null;
}

/** Whether a policy denies every address it does not allow (E2B's allow_internet_access false). */
export function deniesInternet(policy: NetworkPolicy): boolean {
  return policy.denyOut.includes(ALL_IPV4);
}

/** The policy as the agent's proto takes it. */
export function toAgentPolicy(policy: NetworkPolicy): { allowOut: string[]; denyOut: string[] } {
  return { allowOut: [...policy.allowOut], denyOut: [...policy.denyOut] };
}

/**
 * Replaces the egress policy of a running or paused sandbox. The agent enforces it (and keeps
 * it across pause and resume), so the change goes through the agent; the row then holds what
 * the agent reports.
 */
export async function updateSandboxNetwork(
  deps: ServiceDeps,
  principal: Principal,
  row: SandboxRow,
  policy: NetworkPolicy,
  onHost: <T>(rpc: (client: HostAgentClient) => Promise<T>) => Promise<T>,
): Promise<SandboxRow> {
  if (row.state !== "running" && row.state !== "paused") {
    throw new WrennError("conflict", `sandbox ${row.id} is ${row.state}, not running or paused`);
  }
  return auditSandbox(
    deps.audit,
    principal,
    row.id,
    { action: "sandbox.update_network", details: { allow_out: policy.allowOut, deny_out: policy.denyOut } },
    async () => {
      const res = await onHost((c) =>
        c.updateNetworkPolicy({ sandboxId: row.id, networkPolicy: toAgentPolicy(policy) }),
      );
      const fields = rowFieldsFromAgent(res.sandbox);
      return deps.db
        .updateTable("sandboxes")
        .set({ network_policy: JSON.stringify(policy), ...fields })
        .where("id", "=", row.id)
        .returningAll()
        .executeTakeFirstOrThrow();
    },
  );
}
