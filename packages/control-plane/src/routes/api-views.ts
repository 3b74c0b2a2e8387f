import { z } from "zod";
import type {
  ApiKeyRow,
  AuditLogRow,
  ChannelRow,
  HostRow,
  SandboxRow,
  TeamRow,
  TemplateRow,
} from "../db/schema.js";

/** Response shapes of the REST API and the functions that make them from rows. */
const Timestamp = z.string().describe("RFC 3339 timestamp");
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export const SandboxStateSchema = z.enum(["pending", "running", "paused", "stopped", "error", "missing"]);

export const SandboxSchema = z.object({
  id: z.string(),
  team_id: z.string(),
  host_id: z.string().nullable(),
  template: z.string(),
  snapshot_id: z.string().nullable(),
  state: SandboxStateSchema,
  vcpus: z.number().int(),
  memory_mb: z.number().int(),
  disk_mb: z.number().int(),
  timeout_sec: z.number().int(),
  on_timeout: z.enum(["destroy", "pause"]),
  auto_resume: z.boolean().describe("resumed by the first request through the sandbox proxy while paused"),
  metadata: z.record(z.string(), z.string()),
  error: z.string().nullable(),
  created_at: Timestamp,
  updated_at: Timestamp,
  expires_at: Timestamp.nullable(),
  stopped_at: Timestamp.nullable(),
});

export function sandboxView(row: SandboxRow): z.infer<typeof SandboxSchema> {
  return {
    id: row.id,
    team_id: row.team_id,
    host_id: row.host_id,
    template: row.template,
    snapshot_id: row.snapshot_id,
    on_timeout: row.on_timeout,
    auto_resume: row.auto_resume,
    state: row.state,
    vcpus: row.vcpus,
    memory_mb: row.memory_mib,
    disk_mb: row.disk_mib,
    timeout_sec: row.timeout_sec,
    metadata: row.metadata,
    error: row.error,
    created_at: row.created_at.toISOString(),
    updated_at: row.updated_at.toISOString(),
    expires_at: iso(row.expires_at),
    stopped_at: iso(row.stopped_at),
  };
}

/** A created sandbox also carries the token envd requires (shown at creation only). */
export const CreatedSandboxSchema = SandboxSchema.extend({ envd_access_token: z.string() });

export const TeamSchema = z.object({
  id: z.string(),
  name: z.string(),
  is_admin: z.boolean(),
  created_at: Timestamp,
});

export function teamView(row: TeamRow): z.infer<typeof TeamSchema> {
  return { id: row.id, name: row.name, is_admin: row.is_admin, created_at: row.created_at.toISOString() };
}

export const ApiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe("first characters of the key, for recognising it"),
  created_at: Timestamp,
  last_used_at: Timestamp.nullable(),
  revoked_at: Timestamp.nullable(),
});

export function apiKeyView(row: ApiKeyRow): z.infer<typeof ApiKeySchema> {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    created_at: row.created_at.toISOString(),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  };
}

const ResourcesSchema = z.object({ vcpus: z.number(), memory_mb: z.number(), disk_mb: z.number() });

export const HostSchema = z.object({
  id: z.string(),
  name: z.string(),
  shared: z.boolean(),
  state: z.enum(["pending", "up", "unreachable"]),
  url: z.string().nullable(),
  agent_host_id: z.string().nullable(),
  version: z.string().nullable(),
  vmm: z.string().nullable(),
  accel: z.string().nullable(),
  capacity: ResourcesSchema,
  allocated: ResourcesSchema,
  sandbox_count: z.number().int(),
  templates: z.array(z.string()),
  last_seen_at: Timestamp.nullable(),
  created_at: Timestamp,
});

export function hostView(row: HostRow): z.infer<typeof HostSchema> {
  return {
    id: row.id,
    name: row.name,
    shared: row.team_id === null,
    state: row.state,
    url: row.url,
    agent_host_id: row.agent_host_id,
    version: row.version,
    vmm: row.vmm,
    accel: row.accel,
    capacity: {
      vcpus: row.capacity_vcpus,
      memory_mb: row.capacity_memory_mib,
      disk_mb: row.capacity_disk_mib,
    },
    allocated: {
      vcpus: row.allocated_vcpus,
      memory_mb: row.allocated_memory_mib,
      disk_mb: row.allocated_disk_mib,
    },
    sandbox_count: row.sandbox_count,
    templates: row.templates,
    last_seen_at: iso(row.last_seen_at),
    created_at: row.created_at.toISOString(),
  };
}

export const TemplateSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(["base", "snapshot"]),
  host_id: z.string().nullable(),
  source_sandbox_id: z.string().nullable(),
  base_template: z.string().nullable(),
  vcpus: z.number().int().nullable(),
  memory_mb: z.number().int().nullable(),
  disk_mb: z.number().int().nullable(),
  created_at: Timestamp,
});

export function templateView(row: TemplateRow): z.infer<typeof TemplateSchema> {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    host_id: row.host_id,
    source_sandbox_id: row.source_sandbox_id,
    base_template: row.base_template,
    vcpus: row.vcpus,
    memory_mb: row.memory_mib,
    disk_mb: row.disk_mib,
    created_at: row.created_at.toISOString(),
  };
}

export const AuditLogSchema = z.object({
  id: z.string(),
  actor_type: z.enum(["user", "api_key", "host", "system"]),
  actor_id: z.string().nullable(),
  action: z.string(),
  resource_type: z.string(),
  resource_id: z.string().nullable(),
  result: z.enum(["success", "failure"]),
  error_code: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  created_at: Timestamp,
});

export function auditLogView(row: AuditLogRow): z.infer<typeof AuditLogSchema> {
  return {
    id: row.id,
    actor_type: row.actor_type,
    actor_id: row.actor_id,
    action: row.action,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    result: row.result,
    error_code: row.error_code,
    details: row.details,
    created_at: row.created_at.toISOString(),
  };
}

export const ChannelSchema = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  enabled: z.boolean(),
  created_at: Timestamp,
});

export function channelView(row: ChannelRow): z.infer<typeof ChannelSchema> {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    events: row.events,
    enabled: row.enabled,
    created_at: row.created_at.toISOString(),
  };
}
