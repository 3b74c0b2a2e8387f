import type { ApiKeyView, EntryView, SandboxState, SandboxView, TemplateView } from "@wrenn/api";

/** The SDK's camelCase records, made from the /v1 wire shapes that `@wrenn/api` defines. */

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
  /** False: the timeout's pause keeps only the disk. */
  onTimeoutKeepMemory: boolean;
  /** Paused keeping only its disk: a resume cold-boots. */
  pausedWithoutMemory: boolean;
  metadata: Record<string, string>;
  error: string | null;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  stoppedAt: Date | null;
  /** Egress policy in force and public traffic. */
  network: SandboxNetworkInfo;
}

/** A sandbox's network: where it may connect, and who may reach its ports. */
export interface SandboxNetworkInfo {
  /** IPv4 addresses/CIDRs and domains it may reach (allow wins over deny). */
  allowOut: string[];
  /** IPv4 addresses/CIDRs it may not reach; `0.0.0.0/0`: everything not allowed. */
  denyOut: string[];
  /** False when everything not allowed is denied. */
  allowInternetAccess: boolean;
  /** False: requests through the proxy need the sandbox's traffic access token. */
  allowPublicTraffic: boolean;
  /** Host header proxied requests get, if set. */
  maskRequestHost: string | null;
}

const date = (s: string | null): Date | null => (s ? new Date(s) : null);

export function sandboxInfoFromWire(w: SandboxView): SandboxInfo {
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
    onTimeout: w.on_timeout,
    autoResume: w.auto_resume,
    onTimeoutKeepMemory: w.on_timeout_keep_memory,
    pausedWithoutMemory: w.paused_without_memory,
    metadata: w.metadata,
    error: w.error,
    createdAt: new Date(w.created_at),
    updatedAt: new Date(w.updated_at),
    expiresAt: date(w.expires_at),
    stoppedAt: date(w.stopped_at),
    network: {
      allowOut: w.network.allow_out,
      denyOut: w.network.deny_out,
      allowInternetAccess: w.network.allow_internet_access,
      allowPublicTraffic: w.network.allow_public_traffic,
      maskRequestHost: w.network.mask_request_host,
    },
  };
}

/** A named snapshot (or base template). */
export interface SnapshotInfo {
  id: string;
  name: string;
  kind: "base" | "snapshot" | "built";
  hostId: string | null;
  sourceSandboxId: string | null;
  /** A snapshot's image (what its lineage booted from); a base template's own name. */
  image: string | null;
  /** @deprecated The same as `image`. */
  baseTemplate: string | null;
  vcpus: number | null;
  memoryMiB: number | null;
  diskMiB: number | null;
  createdAt: Date;
}

export function snapshotInfoFromWire(w: TemplateView): SnapshotInfo {
  return {
    id: w.id,
    name: w.name,
    kind: w.kind,
    hostId: w.host_id,
    sourceSandboxId: w.source_sandbox_id,
    image: w.image,
    baseTemplate: w.image,
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

export function apiKeyInfoFromWire(w: ApiKeyView): ApiKeyInfo {
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
  type: EntryView["type"];
  size: number;
  mode: number;
  owner: string;
  modifiedAt: Date | null;
}

export function entryInfoFromWire(w: EntryView): EntryInfo {
  return {
    name: w.name,
    path: w.path,
    type: w.type,
    size: w.size,
    mode: w.mode,
    owner: w.owner,
    modifiedAt: date(w.modified_at),
  };
}
