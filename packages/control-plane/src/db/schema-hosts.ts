import type { ColumnType, Generated } from "kysely";
import type { CreatedAt, Json } from "./schema-columns.js";

/** Hosts, their registration and refresh tokens (migrations 001, 014). */

export type HostState = "pending" | "up" | "unreachable" | "revoked";

export interface HostsTable {
  id: string;
  team_id: string | null;
  name: string;
  state: HostState;
  url: string | null;
  agent_token: string | null;
  credential_hash: string | null;
  agent_host_id: string | null;
  version: string | null;
  vmm: string | null;
  accel: string | null;
  capacity_vcpus: Generated<number>;
  capacity_memory_mib: Generated<number>;
  capacity_disk_mib: Generated<number>;
  allocated_vcpus: Generated<number>;
  allocated_memory_mib: Generated<number>;
  allocated_disk_mib: Generated<number>;
  sandbox_count: Generated<number>;
  /** Names of the images the host can boot (from its Ping). */
  images: Json<string[]>;
  /** The agent's sandbox traffic port (migration 002); null until a Ping reports one. */
  traffic_port: Generated<number | null>;
  last_seen_at: Date | null;
  registered_at: Date | null;
  created_at: CreatedAt;
  /** Enrolled agents (migration 014): the self-signed certificate pinned at enrolment, its sha256 fingerprint. */
  cert_pem: Generated<string | null>;
  cert_fingerprint: Generated<string | null>;
  /** When the current access credential stops being accepted; null: a credential that does not expire. */
  credential_expires_at: Generated<Date | null>;
  /** When the current access credential was first presented. */
  credential_used_at: Generated<Date | null>;
  /** The agent's own last heartbeat (last_seen_at is the control plane's last successful Ping). */
  agent_seen_at: Generated<Date | null>;
  /** The certificate fingerprint the agent's last heartbeat reported. */
  agent_cert_fingerprint: Generated<string | null>;
  /** Placement labels (string → string). */
  tags: ColumnType<Record<string, string>, string | undefined, string>;
  /** No new placements while set. */
  draining: Generated<boolean>;
}

export interface HostRefreshTokensTable {
  token_hash: string;
  host_id: string;
  parent_hash: string | null;
  /** The key the successor pair of this token is derived with (migration 016); never sent. */
  derive_key: string;
  created_at: CreatedAt;
  used_at: Date | null;
}

export interface HostRegistrationTokensTable {
  id: string;
  host_id: string;
  token_hash: string;
  expires_at: Date;
  used_at: Date | null;
  created_at: CreatedAt;
}
