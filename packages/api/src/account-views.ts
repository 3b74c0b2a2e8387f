import { z } from "zod";
import { TimestampSchema } from "./fields.js";

/** Response shapes of /v1 teams, keys, hosts, templates, the audit log and channels. */

export const TeamSchema = z.object({
  id: z.string(),
  name: z.string(),
  is_admin: z.boolean(),
  created_at: TimestampSchema,
});
export type TeamView = z.infer<typeof TeamSchema>;

export const ApiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string().describe("first characters of the key, for recognising it"),
  created_at: TimestampSchema,
  last_used_at: TimestampSchema.nullable(),
  revoked_at: TimestampSchema.nullable(),
});
export type ApiKeyView = z.infer<typeof ApiKeySchema>;

/** A new key: the secret is in this response only. */
export const CreatedApiKeySchema = ApiKeySchema.extend({
  key: z.string().describe("wrn_… (also accepted as e2b_… with the same secret)"),
});
export type CreatedApiKeyView = z.infer<typeof CreatedApiKeySchema>;

const ResourcesSchema = z.object({ vcpus: z.number(), memory_mb: z.number(), disk_mb: z.number() });

export const HostSchema = z.object({
  id: z.string(),
  name: z.string(),
  shared: z.boolean(),
  /** revoked: its credentials were cut off (refresh-token reuse); it must be enrolled again. */
  state: z.enum(["pending", "up", "unreachable", "revoked"]),
  url: z.string().nullable(),
  agent_host_id: z.string().nullable(),
  version: z.string().nullable(),
  vmm: z.string().nullable(),
  accel: z.string().nullable(),
  capacity: ResourcesSchema,
  allocated: ResourcesSchema,
  sandbox_count: z.number().int(),
  /** Names of the images (built kernel + rootfs) the host can boot. */
  images: z.array(z.string()),
  /** The same as `images` (its earlier name). */
  templates: z.array(z.string()),
  last_seen_at: TimestampSchema.nullable(),
  created_at: TimestampSchema,
  /** Placement labels; a create's host_tags must all match. */
  tags: z.record(z.string(), z.string()).default({}),
  /** No new placements; its sandboxes stay and may pause, resume and snapshot. */
  draining: z.boolean().default(false),
  /** sha256 fingerprint of the agent certificate pinned at enrolment; null for hosts registered by an operator. */
  cert_fingerprint: z.string().nullable().default(null),
  /** The agent's own last heartbeat (last_seen_at is the control plane's last successful Ping). */
  agent_seen_at: TimestampSchema.nullable().default(null),
  /** The agent's heartbeat reports a certificate other than the pinned one: the control plane refuses it. */
  cert_mismatch: z.boolean().default(false),
});
export type HostView = z.infer<typeof HostSchema>;

export const TemplateSchema = z.object({
  id: z.string(),
  name: z.string(),
  /** base: an image; snapshot: frozen from a sandbox; built: built from steps (see builds). */
  kind: z.enum(["base", "snapshot", "built"]),
  host_id: z.string().nullable(),
  source_sandbox_id: z.string().nullable(),
  /** A snapshot template's image (what its lineage booted from); a base template's own name. */
  image: z.string().nullable(),
  /** The same as `image` (its earlier name). */
  base_template: z.string().nullable(),
  vcpus: z.number().int().nullable(),
  memory_mb: z.number().int().nullable(),
  disk_mb: z.number().int().nullable(),
  /** A built template: the build new sandboxes start from (its "latest" tag); null before one is ready. */
  build_id: z.string().nullable().default(null),
  /** A built template: its newest build's status. */
  build_status: z.enum(["waiting", "building", "ready", "error"]).nullable().default(null),
  /** A built template's tags, each naming one of its builds. */
  tags: z.array(z.string()).default([]),
  created_at: TimestampSchema,
});
export type TemplateView = z.infer<typeof TemplateSchema>;

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
  created_at: TimestampSchema,
});
export type AuditLogView = z.infer<typeof AuditLogSchema>;

export const ChannelSchema = z.object({
  id: z.string(),
  name: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  enabled: z.boolean(),
  created_at: TimestampSchema,
});
export type ChannelView = z.infer<typeof ChannelSchema>;
