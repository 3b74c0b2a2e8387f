import { z } from "zod";
import { TimestampSchema } from "./fields.js";
import { SandboxNetworkSchema } from "./network-schemas.js";
import { SandboxStateSchema } from "./sandbox-state.js";

/** Response shapes of /v1 sandboxes, their commands and files. */

export const OnTimeoutSchema = z.enum(["destroy", "pause"]);

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
  on_timeout: OnTimeoutSchema,
  auto_resume: z.boolean().describe("resumed by the first request through the sandbox proxy while paused"),
  on_timeout_keep_memory: z.boolean().describe("false: the timeout's pause keeps only the disk"),
  paused_without_memory: z.boolean().describe("paused keeping only its disk: a resume cold-boots"),
  metadata: z.record(z.string(), z.string()),
  error: z.string().nullable(),
  created_at: TimestampSchema,
  updated_at: TimestampSchema,
  expires_at: TimestampSchema.nullable(),
  stopped_at: TimestampSchema.nullable(),
  network: SandboxNetworkSchema.describe("egress policy in force and public traffic"),
});
export type SandboxView = z.infer<typeof SandboxSchema>;

/** A created sandbox also carries the token envd requires (shown at creation only). */
export const CreatedSandboxSchema = SandboxSchema.extend({
  envd_access_token: z.string(),
  traffic_access_token: z
    .string()
    .nullable()
    .describe("set when allow_public_traffic is false: send it as e2b-traffic-access-token"),
});
export type CreatedSandboxView = z.infer<typeof CreatedSandboxSchema>;

export const SandboxMetricsSchema = z.object({
  cpu_count: z.number(),
  cpu_used_pct: z.number(),
  mem_total_bytes: z.number(),
  mem_used_bytes: z.number(),
  disk_total_bytes: z.number(),
  disk_used_bytes: z.number(),
  vmm_rss_bytes: z.number(),
  timestamp: z.string().nullable(),
});
export type SandboxMetricsView = z.infer<typeof SandboxMetricsSchema>;

export const OutputEncodingSchema = z.enum(["utf8", "base64"]);

/** A finished command: exit code and output (base64 when not UTF-8, with the encoding named). */
export const ExecResultSchema = z.object({
  exit_code: z.number().int(),
  stdout: z.string(),
  stderr: z.string(),
  stdout_encoding: OutputEncodingSchema,
  stderr_encoding: OutputEncodingSchema,
  error: z.string().nullable(),
  pid: z.number().int(),
});
export type ExecResultView = z.infer<typeof ExecResultSchema>;

export const StartedProcessSchema = z.object({ pid: z.number().int() });

export const ProcessSchema = z.object({
  pid: z.number().int(),
  tag: z.string(),
  cmd: z.string(),
  args: z.array(z.string()),
  cwd: z.string(),
});
export type ProcessView = z.infer<typeof ProcessSchema>;

export const EntryTypeSchema = z.enum(["file", "directory", "symlink", "unknown"]);

export const EntrySchema = z.object({
  name: z.string(),
  path: z.string(),
  type: EntryTypeSchema,
  size: z.number(),
  mode: z.number(),
  owner: z.string(),
  modified_at: z.string().nullable(),
});
export type EntryView = z.infer<typeof EntrySchema>;

export const FileWrittenSchema = z.object({ path: z.string(), size: z.number() });
export type FileWrittenView = z.infer<typeof FileWrittenSchema>;

export const DirCreatedSchema = z.object({ created: z.boolean() });
export type DirCreatedView = z.infer<typeof DirCreatedSchema>;
