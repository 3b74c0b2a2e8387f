import type { Db } from "../db/database.js";

/** Who may send a sandbox traffic, and how its requests are shown to it. */
export interface TrafficAccess {
  /** Set: requests (other than to envd) must carry it as `e2b-traffic-access-token`. */
  trafficAccessToken: string | null;
  /** Set: the Host header the sandbox sees, `${PORT}` replaced by the target port. */
  maskRequestHost: string | null;
}

/** The host agent that takes a sandbox's traffic, or why there is none. */
export type SandboxAddress =
  | {
      reachable: true;
      access: TrafficAccess;
      /** The agent's traffic listener. */
      protocol: "http:" | "https:";
      host: string;
      port: number;
      /** Sent as `wrenn-agent-token`. */
      agentToken: string;
      /** An enrolled agent's pinned certificate; null: the system's trust. */
      pin?: { certPem: string; fingerprint: string } | null | undefined;
    }
  | {
      reachable: false;
      reason: string;
      /** Known when the sandbox is (paused, with auto resume, traffic would wake it). */
      access?: TrafficAccess;
      /** Paused with auto resume, or being resumed: traffic may wake it or wait for it (its team, for the audit log). */
      wakeable?: { teamId: string };
    };

/**
 * Looks a sandbox up for its traffic: its state, and its host agent's traffic listener
 * (the host of the agent's registered URL, the port its Ping reports). Not team-scoped:
 * whoever reaches a sandbox port still has to satisfy what listens there (envd checks
 * its access token).
 */
export async function resolveSandboxAddress(db: Db, sandboxId: string): Promise<SandboxAddress> {
  const row = await db
    .selectFrom("sandboxes")
    .leftJoin("hosts", "hosts.id", "sandboxes.host_id")
    .select([
      "sandboxes.state",
      "sandboxes.team_id",
      "sandboxes.auto_resume",
      "sandboxes.paused_without_memory",
      "sandboxes.traffic_access_token",
      "sandboxes.mask_request_host",
      "sandboxes.operation",
      "hosts.url",
      "hosts.agent_token",
      "hosts.traffic_port",
      "hosts.cert_pem",
      "hosts.cert_fingerprint",
    ])
    .where("sandboxes.id", "=", sandboxId)
    .executeTakeFirst();
  if (!row) return { reachable: false, reason: "not found" };
  const access = { trafficAccessToken: row.traffic_access_token, maskRequestHost: row.mask_request_host };
  // A sandbox paused without memory is resumed only when asked: traffic would reach a cold boot.
  if (row.state === "paused" && row.auto_resume && !row.paused_without_memory) {
    return { reachable: false, reason: row.state, access, wakeable: { teamId: row.team_id } };
  }
  // Running by a resume whose agent call has not ended: the VM may still be restoring. A wake
  // waits for that resume (proxy/auto-resume.ts), then the address is looked up again.
  if (row.state === "running" && row.operation === "resume") {
    return { reachable: false, reason: "resuming", access, wakeable: { teamId: row.team_id } };
  }
  if (row.state !== "running") return { reachable: false, reason: row.state };
  if (!row.url || !row.agent_token || !row.traffic_port) {
    return { reachable: false, reason: "its host agent has no traffic listener" };
  }
  const url = new URL(row.url);
  return {
    reachable: true,
    protocol: url.protocol === "https:" ? "https:" : "http:",
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: row.traffic_port,
    agentToken: row.agent_token,
    pin:
      row.cert_pem && row.cert_fingerprint
        ? { certPem: row.cert_pem, fingerprint: row.cert_fingerprint }
        : null,
    access,
  };
}
