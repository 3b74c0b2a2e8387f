import type { Insertable, Selectable } from "kysely";
import type {
  ApiKeysTable,
  InvitationsTable,
  SessionsTable,
  TeamMembersTable,
  TeamsTable,
  UsersTable,
} from "./schema-accounts.js";
import type {
  AuditLogsTable,
  ChannelDeliveriesTable,
  ChannelsTable,
  EventSpillTable,
  ReplicasTable,
  SigninFailuresTable,
  UploadLinksTable,
  WorkerLeasesTable,
} from "./schema-events.js";
import type { HostRefreshTokensTable, HostRegistrationTokensTable, HostsTable } from "./schema-hosts.js";
import type {
  SandboxesTable,
  SandboxMetricsTable,
  TeamMetricsTable,
  VolumesTable,
} from "./schema-sandboxes.js";
import type {
  TemplateBuildHostsTable,
  TemplateBuildLogsTable,
  TemplateBuildsTable,
  TemplateFilesTable,
  TemplateStepCacheTable,
  TemplatesTable,
  TemplateTagsTable,
} from "./schema-templates.js";

/**
 * The control plane's database: row types of its tables (migrations/*.sql is their source),
 * one file per area (schema-*.ts), gathered here.
 */
export * from "./schema-accounts.js";
export * from "./schema-events.js";
export * from "./schema-hosts.js";
export * from "./schema-sandboxes.js";
export * from "./schema-templates.js";

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
