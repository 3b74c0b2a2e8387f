/** Wire shapes of the /v1 API (snake_case, as the control plane's zod schemas define them). */

export type SandboxState = "pending" | "running" | "paused" | "stopped" | "error" | "missing";

export interface SandboxWire {
  id: string;
  team_id: string;
  host_id: string | null;
  template: string;
  snapshot_id: string | null;
  state: SandboxState;
  vcpus: number;
  memory_mb: number;
  disk_mb: number;
  timeout_sec: number;
  on_timeout?: "destroy" | "pause";
  auto_resume?: boolean;
  metadata: Record<string, string>;
  error: string | null;
  created_at: string;
  updated_at: string;
  expires_at: string | null;
  stopped_at: string | null;
}

export interface PageWire<T> {
  items: T[];
  next_cursor: string | null;
}

export interface ExecWire {
  exit_code: number;
  stdout: string;
  stderr: string;
  stdout_encoding: "utf8" | "base64";
  stderr_encoding: "utf8" | "base64";
  error: string | null;
  pid: number;
}

export interface ProcessWire {
  pid: number;
  tag: string;
  cmd: string;
  args: string[];
  cwd: string;
}

export interface EntryWire {
  name: string;
  path: string;
  type: string;
  size: number;
  mode: number;
  owner: string;
  modified_at: string | null;
}

export interface TemplateWire {
  id: string;
  name: string;
  kind: "base" | "snapshot";
  host_id: string | null;
  source_sandbox_id: string | null;
  base_template: string | null;
  vcpus: number | null;
  memory_mb: number | null;
  disk_mb: number | null;
  created_at: string;
}

export interface ApiKeyWire {
  id: string;
  name: string;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  revoked_at: string | null;
}

/** A sandbox as the API last reported it. */
export interface SandboxInfo {
  sandboxId: string;
  teamId: string;
  hostId: string | null;
  /** The base template (for a sandbox made from a snapshot: that snapshot's base; see `snapshotId`). */
  template: string;
  snapshotId: string | null;
  state: SandboxState;
  vcpus: number;
  memoryMiB: number;
  diskMiB: number;
  /** Inactivity timeout in seconds. */
  timeoutSec: number;
  /** What the inactivity timeout does. */
  onTimeout: "destroy" | "pause";
  /** While paused, the first request through the sandbox proxy resumes it. */
  autoResume: boolean;
  metadata: Record<string, string>;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  stoppedAt: Date | null;
}

const date = (s: string | null): Date | null => (s ? new Date(s) : null);

export function sandboxInfoFromWire(w: SandboxWire): SandboxInfo {
  return {
    sandboxId: w.id,
    teamId: w.team_id,
    hostId: w.host_id,
    template: w.template,
    snapshotId: w.snapshot_id,
    state: w.state,
    vcpus: w.vcpus,
    memoryMiB: w.memory_mb,
    diskMiB: w.disk_mb,
    timeoutSec: w.timeout_sec,
    onTimeout: w.on_timeout ?? "pause",
    autoResume: w.auto_resume ?? false,
    metadata: w.metadata,
    error: w.error,
    createdAt: new Date(w.created_at),
    updatedAt: new Date(w.updated_at),
    expiresAt: date(w.expires_at),
    stoppedAt: date(w.stopped_at),
  };
}

/** A named snapshot (or base template). */
export interface SnapshotInfo {
  id: string;
  name: string;
  kind: "base" | "snapshot";
  hostId: string | null;
  sourceSandboxId: string | null;
  baseTemplate: string | null;
  vcpus: number | null;
  memoryMiB: number | null;
  diskMiB: number | null;
  createdAt: Date;
}

export function snapshotInfoFromWire(w: TemplateWire): SnapshotInfo {
  return {
    id: w.id,
    name: w.name,
    kind: w.kind,
    hostId: w.host_id,
    sourceSandboxId: w.source_sandbox_id,
    baseTemplate: w.base_template,
    vcpus: w.vcpus,
    memoryMiB: w.memory_mb,
    diskMiB: w.disk_mb,
    createdAt: new Date(w.created_at),
  };
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  /** The first characters of the key, to recognise it. */
  prefix: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

export function apiKeyInfoFromWire(w: ApiKeyWire): ApiKeyInfo {
  return {
    id: w.id,
    name: w.name,
    prefix: w.prefix,
    createdAt: new Date(w.created_at),
    lastUsedAt: date(w.last_used_at),
    revokedAt: date(w.revoked_at),
  };
}

export interface EntryInfo {
  name: string;
  path: string;
  type: "file" | "directory" | "symlink" | "unknown";
  size: number;
  mode: number;
  owner: string;
  modifiedAt: Date | null;
}

export function entryInfoFromWire(w: EntryWire): EntryInfo {
  const type = ["file", "directory", "symlink"].includes(w.type) ? (w.type as EntryInfo["type"]) : "unknown";
  return {
    name: w.name,
    path: w.path,
    type,
    size: w.size,
    mode: w.mode,
    owner: w.owner,
    modifiedAt: date(w.modified_at),
  };
}
