import { z } from "zod";
import { ChannelSchema, HostSchema, TeamSchema } from "./account-views.js";
import { TimestampSchema } from "./fields.js";

/** Bodies and views of /v1 teams and members, hosts and agent registration, webhook channels, health. */

export const TeamNameBodySchema = z.object({ name: z.string().min(1).max(128) });
export type TeamNameBody = z.input<typeof TeamNameBodySchema>;

/** A new team and its first API key (the key is in this response only). */
export const CreatedTeamSchema = z.object({
  team: TeamSchema,
  api_key: z.object({ id: z.string(), key: z.string(), prefix: z.string() }),
});

export const MemberRoleSchema = z.enum(["owner", "admin", "member"]);

export const MemberSchema = z.object({
  user_id: z.string(),
  email: z.string(),
  name: z.string(),
  role: MemberRoleSchema,
  created_at: TimestampSchema,
});
export type MemberView = z.infer<typeof MemberSchema>;

export const AddMemberBodySchema = z.object({
  email: z.email(),
  name: z.string().max(128).optional(),
  role: MemberRoleSchema.default("member"),
});
export type AddMemberBody = z.input<typeof AddMemberBodySchema>;

export const HostCreateBodySchema = z.object({
  name: z.string().min(1).max(128),
  shared: z.boolean().default(false).describe("offer it to every team (admin team only)"),
});
export type HostCreateBody = z.input<typeof HostCreateBodySchema>;

/** A new host and its one-time registration token (shown once). */
export const CreatedHostSchema = z.object({
  host: HostSchema,
  registration_token: z.string(),
  expires_at: TimestampSchema,
});

const AgentUrlSchema = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//.test(u), "must be an http:// (h2c) or https:// URL");

export const HostRegisterBodySchema = z.object({
  token: z.string().min(1).describe("the host's one-time registration token (wrnr_…)"),
  url: AgentUrlSchema.describe("where the agent's RPC listener is reached"),
  agent_token: z.string().min(16).describe("the bearer token the agent requires on every RPC"),
});
export type HostRegisterBody = z.input<typeof HostRegisterBodySchema>;

/** A registered host and its long-lived credential (shown once). */
export const RegisteredHostSchema = z.object({ host: HostSchema, credential: z.string() });

/** What an enrolled agent reports with each heartbeat (all optional). */
export const HeartbeatBodySchema = z.object({
  cert_fingerprint: z
    .string()
    .max(128)
    .optional()
    .describe("sha256 fingerprint of the certificate the agent serves"),
  version: z.string().max(64).optional(),
});
export type HeartbeatBody = z.input<typeof HeartbeatBodySchema>;

export const HeartbeatSchema = z.object({
  host_id: z.string(),
  /** When this heartbeat was recorded. */
  last_seen_at: TimestampSchema,
  draining: z.boolean().default(false),
  /** False when the agent serves a certificate other than the one pinned at enrolment. */
  cert_pinned: z.boolean().default(true),
});

const TAG_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/;

/** Host placement labels: at most 32, keys like `zone` or `gpu.model`, values up to 128 characters. */
export const HostTagsSchema = z
  .record(z.string().regex(TAG_KEY_RE, "tag keys: letters, digits, . _ / -, at most 63"), z.string().max(128))
  .refine((tags) => Object.keys(tags).length <= 32, "at most 32 tags");
export type HostTags = z.infer<typeof HostTagsSchema>;

export const HostPatchBodySchema = z
  .object({
    tags: HostTagsSchema.optional().describe("replaces the host's tags"),
    draining: z.boolean().optional().describe("true: no new placements; its sandboxes stay"),
  })
  .refine((b) => b.tags !== undefined || b.draining !== undefined, "give tags, draining or both");
export type HostPatchBody = z.input<typeof HostPatchBodySchema>;

/** An agent enrolling itself: the registration body plus its self-signed certificate, which is pinned. */
export const HostEnrolBodySchema = HostRegisterBodySchema.extend({
  cert_pem: z
    .string()
    .min(64)
    .max(16_384)
    .describe("the agent's self-signed TLS certificate (PEM); the control plane pins its fingerprint"),
  tags: HostTagsSchema.default({}),
});
export type HostEnrolBody = z.input<typeof HostEnrolBodySchema>;

/** An enrolled agent's credentials: a short-lived access credential and a rotating refresh token. */
export const HostCredentialsSchema = z.object({
  host_id: z.string(),
  credential: z.string().describe("wrnh_…, sent as Authorization: Bearer on heartbeats"),
  expires_at: TimestampSchema,
  refresh_token: z.string().describe("wrnf_…, traded once at POST /v1/hosts/token for the next pair"),
});
export type HostCredentials = z.infer<typeof HostCredentialsSchema>;

export const HostRefreshBodySchema = z.object({ refresh_token: z.string().min(1) });
export type HostRefreshBody = z.input<typeof HostRefreshBodySchema>;

/** What a webhook channel can subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  "sandbox.created",
  "sandbox.running",
  "sandbox.paused",
  "sandbox.resumed",
  "sandbox.destroyed",
  "sandbox.error",
  "sandbox.missing",
  "snapshot.created",
  "snapshot.deleted",
  "template.built",
  "template.build_failed",
  "template.deleted",
  "host.up",
  "host.down",
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export const ChannelCreateBodySchema = z.object({
  name: z.string().min(1).max(128),
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL"),
  events: z
    .array(z.enum(WEBHOOK_EVENT_TYPES))
    .default([])
    .describe("event types to deliver; empty means all"),
});
export type ChannelCreateBody = z.input<typeof ChannelCreateBodySchema>;

/** A new channel and its signing secret (shown once). */
export const CreatedChannelSchema = ChannelSchema.extend({ secret: z.string() });

export const DeliverySchema = z.object({
  id: z.string(),
  event_id: z.string(),
  event_type: z.string(),
  status: z.enum(["pending", "delivered", "failed"]),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
  created_at: TimestampSchema,
  delivered_at: TimestampSchema.nullable(),
});
export type DeliveryView = z.infer<typeof DeliverySchema>;

/** `GET /health` (no key): version, database kind and each host's state. */
export const HealthSchema = z.object({
  status: z.literal("ok"),
  version: z.string(),
  database: z.enum(["postgres", "pglite"]),
  hosts: z.array(
    z.object({
      id: z.string(),
      name: z.string(),
      state: z.string(),
      last_seen_at: TimestampSchema.nullable(),
    }),
  ),
});
export type HealthView = z.infer<typeof HealthSchema>;
