import type {
  ApiKeyView,
  AuditLogView,
  ChannelView,
  CreatedSandboxView,
  HostView,
  SandboxView,
  TeamView,
  TemplateView,
} from "@wrenn/api";
import type {
  ApiKeyRow,
  AuditLogRow,
  ChannelRow,
  HostRow,
  SandboxRow,
  TeamRow,
  TemplateRow,
} from "../db/schema.js";
import { deniesInternet } from "../services/sandbox-network.js";

/** The /v1 views (their schemas are the contract in `@wrenn/api`) made from database rows. */
const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

export function sandboxView(row: SandboxRow): SandboxView {
  return {
    id: row.id,
    team_id: row.team_id,
    host_id: row.host_id,
    template: row.template,
    snapshot_id: row.snapshot_id,
    on_timeout: row.on_timeout,
    auto_resume: row.auto_resume,
    on_timeout_keep_memory: row.on_timeout_keep_memory,
    paused_without_memory: row.paused_without_memory,
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
    network: {
      allow_out: row.network_policy.allowOut,
      deny_out: row.network_policy.denyOut,
      allow_internet_access: !deniesInternet(row.network_policy),
      allow_public_traffic: row.traffic_access_token === null,
      mask_request_host: row.mask_request_host,
    },
  };
}

/** A sandbox as its create (or fork) answers it: with the tokens only its creator gets. */
export function createdSandboxView(row: SandboxRow): CreatedSandboxView {
  return {
    ...sandboxView(row),
    envd_access_token: row.envd_access_token,
    traffic_access_token: row.traffic_access_token,
  };
}

export function teamView(row: TeamRow): TeamView {
  return { id: row.id, name: row.name, is_admin: row.is_admin, created_at: row.created_at.toISOString() };
}

export function apiKeyView(row: ApiKeyRow): ApiKeyView {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    created_at: row.created_at.toISOString(),
    last_used_at: iso(row.last_used_at),
    revoked_at: iso(row.revoked_at),
  };
}

/** An enrolled agent whose heartbeat reports a certificate other than the pinned one. */
export function certMismatch(row: Pick<HostRow, "cert_fingerprint" | "agent_cert_fingerprint">): boolean {
  return (
    !!row.cert_fingerprint &&
    !!row.agent_cert_fingerprint &&
    row.cert_fingerprint !== row.agent_cert_fingerprint
  );
}

export function hostView(row: HostRow): HostView {
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
    images: row.images,
    templates: row.images,
    last_seen_at: iso(row.last_seen_at),
    created_at: row.created_at.toISOString(),
    tags: row.tags,
    draining: row.draining,
    cert_fingerprint: row.cert_fingerprint,
    agent_seen_at: iso(row.agent_seen_at),
    cert_mismatch: certMismatch(row),
  };
}

/** A template; a built one's newest build status and tags come from the templates service. */
export function templateView(
  row: TemplateRow,
  built: { buildStatus: TemplateView["build_status"]; tags: string[] } = { buildStatus: null, tags: [] },
): TemplateView {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    host_id: row.host_id,
    source_sandbox_id: row.source_sandbox_id,
    image: row.image,
    base_template: row.image,
    vcpus: row.vcpus,
    memory_mb: row.memory_mib,
    disk_mb: row.disk_mib,
    build_id: row.build_id,
    build_status: built.buildStatus,
    tags: built.tags,
    created_at: row.created_at.toISOString(),
  };
}

export function auditLogView(row: AuditLogRow): AuditLogView {
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

export function channelView(row: ChannelRow): ChannelView {
  return {
    id: row.id,
    name: row.name,
    url: row.url,
    events: row.events,
    enabled: row.enabled,
    created_at: row.created_at.toISOString(),
  };
}
