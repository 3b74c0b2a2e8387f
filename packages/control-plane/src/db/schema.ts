import type { SandboxState } from "@wrenn/api";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { ColumnType, Generated, Insertable, Selectable } from "kysely";

/** Row types of the control plane's tables (migrations/*.sql is their source). */
type CreatedAt = ColumnType<Date, Date | string | undefined, never>;
type Json<T> = ColumnType<T, string, string>;
/** bigint: the drivers answer a string (pg) or a bigint (PGlite); read it with Number(). */
type Int8 = ColumnType<string | number | bigint, number, number>;

export interface TeamsTable {
  id: string;
  name: string;
  is_admin: Generated<boolean>;
  created_at: CreatedAt;
}

export interface UsersTable {
  id: string;
  email: string;
  name: Generated<string>;
  /** argon2id PHC string (migration 011); null: cannot sign in with a password. */
  password_hash: Generated<string | null>;
  created_at: CreatedAt;
}

/** A browser session (migration 011); id is the sha256 of the cookie's token. */
export interface SessionsTable {
  id: string;
  user_id: string;
  /** The team the session acts for. */
  team_id: string;
  csrf_token: string;
  created_at: CreatedAt;
  last_seen_at: ColumnType<Date, Date | undefined, Date>;
  expires_at: Date;
}

/** An invitation into a team (migration 011); only the accept token's sha256 is kept. */
export interface InvitationsTable {
  id: string;
  team_id: string;
  email: string;
  role: MemberRole;
  token_hash: string;
  invited_by: string | null;
  created_at: CreatedAt;
  expires_at: Date;
  accepted_at: Generated<Date | null>;
}

export type MemberRole = "owner" | "admin" | "member";

export interface TeamMembersTable {
  team_id: string;
  user_id: string;
  role: MemberRole;
  created_at: CreatedAt;
}

export interface ApiKeysTable {
  id: string;
  team_id: string;
  name: string;
  prefix: string;
  key_hash: string;
  created_by: string | null;
  created_at: CreatedAt;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

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

export type TemplateKind = "base" | "snapshot" | "built";

export interface TemplatesTable {
  id: string;
  team_id: string | null;
  name: string;
  kind: TemplateKind;
  host_id: string | null;
  agent_name: string | null;
  source_sandbox_id: string | null;
  /** A snapshot template's image (what its lineage booted from); a base template's own name. */
  image: string | null;
  vcpus: number | null;
  memory_mib: number | null;
  disk_mib: number | null;
  /** A built template: the build its sandboxes start from (migration 005). */
  build_id: Generated<string | null>;
  /** A built template's env vars (its `env` steps), given to every sandbox made from it. */
  env: ColumnType<Record<string, string>, string | undefined, string>;
  default_user: Generated<string | null>;
  default_workdir: Generated<string | null>;
  /** A snapshot template's source policy when taken (migration 010); null: open. */
  network_policy: ColumnType<NetworkPolicy | null, string | null | undefined, string | null>;
  created_at: CreatedAt;
}

export type BuildStatusName = "waiting" | "building" | "ready" | "error";

/** One build of a built template (migration 005). */
export interface TemplateBuildsTable {
  id: string;
  template_id: string;
  team_id: string;
  status: BuildStatusName;
  /** The BuildSpec, null until started. */
  spec: ColumnType<unknown, string | null | undefined, string | null>;
  tags: Json<string[]>;
  vcpus: number;
  memory_mib: number;
  disk_mib: number;
  host_id: Generated<string | null>;
  sandbox_id: Generated<string | null>;
  /** The cache key after each step, in order. */
  step_keys: ColumnType<string[], string | undefined, string>;
  steps_cached: Generated<number>;
  env: ColumnType<Record<string, string>, string | undefined, string>;
  default_user: Generated<string | null>;
  default_workdir: Generated<string | null>;
  error_message: Generated<string | null>;
  error_step: Generated<string | null>;
  created_at: CreatedAt;
  started_at: Generated<Date | null>;
  finished_at: Generated<Date | null>;
  /** The replica running the build (status building). */
  claimed_by: Generated<string | null>;
}

export interface TemplateBuildLogsTable {
  build_id: string;
  seq: number;
  created_at: CreatedAt;
  level: "debug" | "info" | "warn" | "error";
  step: string;
  message: string;
}

/** Where a build's snapshot is (the agent's snapshot name on that host). */
export interface TemplateBuildHostsTable {
  build_id: string;
  host_id: string;
  agent_name: string;
  created_at: CreatedAt;
}

export interface TemplateTagsTable {
  template_id: string;
  tag: string;
  build_id: string;
  created_at: CreatedAt;
}

/** A step's result on one host: a snapshot named `agent_name`, keyed by parent and inputs. */
export interface TemplateStepCacheTable {
  host_id: string;
  key: string;
  agent_name: string;
  created_at: CreatedAt;
  used_at: ColumnType<Date, Date | undefined, Date>;
}

export interface TemplateFilesTable {
  team_id: string;
  hash: string;
  size: ColumnType<number, number | bigint, number | bigint>;
  created_at: CreatedAt;
}

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
}

export type SandboxOperation = "pause" | "resume";

export type ActorType = "user" | "api_key" | "host" | "system";

export interface AuditLogsTable {
  id: string;
  team_id: string | null;
  actor_type: ActorType;
  actor_id: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  result: "success" | "failure";
  error_code: string | null;
  details: Json<Record<string, unknown>>;
  created_at: CreatedAt;
}

export interface ChannelsTable {
  id: string;
  team_id: string;
  name: string;
  url: string;
  secret: string;
  events: Json<string[]>;
  enabled: Generated<boolean>;
  created_at: CreatedAt;
}

export interface ChannelDeliveriesTable {
  id: string;
  channel_id: string;
  event_id: string;
  event_type: string;
  status: "pending" | "delivered" | "failed";
  attempts: Generated<number>;
  last_error: string | null;
  created_at: CreatedAt;
  delivered_at: Date | null;
  /** The JSON body sent (for a replica that takes the delivery over). */
  body: Generated<string | null>;
  /** Until when the replica that sends or retries it has it (database clock). */
  claimed_until: Generated<Date | null>;
}

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

export interface ReplicasTable {
  id: string;
  started_at: CreatedAt;
  last_seen_at: CreatedAt;
}

export interface WorkerLeasesTable {
  name: string;
  holder: string;
  expires_at: Date;
  fence: Generated<Int8>;
}

export interface EventSpillTable {
  id: string;
  body: Json<unknown>;
  created_at: CreatedAt;
}

export interface SigninFailuresTable {
  key: string;
  count: number;
  reset_at: Date;
}

export interface UploadLinksTable {
  token_hash: string;
  principal: Json<unknown>;
  files_hash: string;
  expires_at: Date;
}

export interface DatabaseSchema {
  teams: TeamsTable;
  users: UsersTable;
  sessions: SessionsTable;
  invitations: InvitationsTable;
  team_members: TeamMembersTable;
  api_keys: ApiKeysTable;
  hosts: HostsTable;
  host_registration_tokens: HostRegistrationTokensTable;
  host_refresh_tokens: HostRefreshTokensTable;
  templates: TemplatesTable;
  template_builds: TemplateBuildsTable;
  template_build_logs: TemplateBuildLogsTable;
  template_build_hosts: TemplateBuildHostsTable;
  template_tags: TemplateTagsTable;
  template_step_cache: TemplateStepCacheTable;
  template_files: TemplateFilesTable;
  sandboxes: SandboxesTable;
  audit_logs: AuditLogsTable;
  channels: ChannelsTable;
  channel_deliveries: ChannelDeliveriesTable;
  volumes: VolumesTable;
  sandbox_metrics: SandboxMetricsTable;
  team_metrics: TeamMetricsTable;
  replicas: ReplicasTable;
  worker_leases: WorkerLeasesTable;
  event_spill: EventSpillTable;
  signin_failures: SigninFailuresTable;
  upload_links: UploadLinksTable;
}

export type TeamRow = Selectable<TeamsTable>;
export type UserRow = Selectable<UsersTable>;
export type SessionRow = Selectable<SessionsTable>;
export type InvitationRow = Selectable<InvitationsTable>;
export type ApiKeyRow = Selectable<ApiKeysTable>;
export type HostRow = Selectable<HostsTable>;
export type TemplateRow = Selectable<TemplatesTable>;
export type SandboxRow = Selectable<SandboxesTable>;
export type VolumeRow = Selectable<VolumesTable>;
export type TemplateBuildRow = Selectable<TemplateBuildsTable>;
export type NewSandbox = Insertable<SandboxesTable>;
export type AuditLogRow = Selectable<AuditLogsTable>;
export type ChannelRow = Selectable<ChannelsTable>;
