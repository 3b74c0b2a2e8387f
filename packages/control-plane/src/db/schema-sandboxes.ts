import type { SandboxState } from "@wrenn/api";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { ColumnType, Generated } from "kysely";
import type { CreatedAt, Int8, Json } from "./schema-columns.js";

/** Sandboxes, volumes and metrics history (migrations 001, 003, 006, 007, 010, 012, 015). */

/** The /v1 state vocabulary is the contract's; the database stores the same names. */
export type SandboxStateName = SandboxState;

export interface SandboxesTable {
  id: string;
  team_id: string;
  host_id: string | null;
  template: string;
  snapshot_id: string | null;
  state: SandboxStateName;
  vcpus: number;
  memory_mib: number;
  disk_mib: number;
  timeout_sec: number;
  metadata: Json<Record<string, string>>;
  envd_access_token: string;
  host_ip: string | null;
  error: string | null;
  expires_at: Date | null;
  created_at: CreatedAt;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
  stopped_at: Date | null;
  /** What the inactivity timeout does (migration 003). */
  on_timeout: Generated<"destroy" | "pause">;
  /** Resumed by the first proxied request while paused (migration 003). */
  auto_resume: Generated<boolean>;
  /** A timeout pause keeps memory; false: filesystem-only (migration 006). */
  on_timeout_keep_memory: Generated<boolean>;
  /** Paused without memory: its resume cold-boots from disk (migration 006). */
  paused_without_memory: Generated<boolean>;
  /** Set on a template build's VM (migration 005): not listed to users. */
  build_id: Generated<string | null>;
  /** The built template's build it started from: its start command runs again after a reboot (migration 008). */
  template_build_id: Generated<string | null>;
  /** Egress policy in force, as the agent last reported it (migration 010). */
  network_policy: ColumnType<NetworkPolicy, string | undefined, string>;
  /** Private public traffic: the proxy wants this in `e2b-traffic-access-token` (migration 010). */
  traffic_access_token: Generated<string | null>;
  /** Host header proxied requests get, `${PORT}` replaced (migration 010). */
  mask_request_host: Generated<string | null>;
  /** A pause or resume whose host call has not ended; the reconciler leaves the row alone (migration 015). */
  operation: Generated<SandboxOperation | null>;
  operation_started_at: Generated<Date | null>;
  /** The replica whose call the mark belongs to (migration 017). */
  operation_replica: Generated<string | null>;
}

export type SandboxOperation = "pause" | "resume";

export interface VolumesTable {
  id: string;
  team_id: string;
  name: string;
  host_id: string;
  size_mib: number;
  /** Bearer token of the volume's content API. */
  content_token: string;
  created_at: CreatedAt;
}

/** One sample of a running sandbox (migration 012); bytes, percent of all its vCPUs. */
export interface SandboxMetricsTable {
  sandbox_id: string;
  team_id: string;
  ts: Date;
  cpu_count: number;
  cpu_used_pct: number;
  mem_used: Int8;
  mem_total: Int8;
  disk_used: Int8;
  disk_total: Int8;
}

/** A team's totals at one sampler tick (migration 012). */
export interface TeamMetricsTable {
  team_id: string;
  ts: Date;
  running_sandboxes: number;
  vcpus: number;
  memory_mib: Int8;
  sandbox_start_rate: Generated<number>;
}
