import { z } from "zod";
import { HostTagsSchema } from "./admin-schemas.js";
import { EnvVarsSchema, MetadataSchema, NameSchema, PaginationQuerySchema } from "./fields.js";
import { SandboxNetworkCreateSchema } from "./network-schemas.js";
import { SandboxStateSchema } from "./sandbox-state.js";
import { OnTimeoutSchema } from "./sandbox-views.js";
import { VolumeMountSchema } from "./volume-schemas.js";

/** Request bodies and queries of /v1 sandboxes, their commands and files, and snapshots. */

/** Bounds a control plane is configured with; the schemas that depend on them are made per process. */
export interface SandboxLimits {
  maxTimeoutSec: number;
  maxForkCount: number;
}

/** The bounds a control plane has unless configured otherwise (and what the SDK's types assume). */
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = { maxTimeoutSec: 24 * 3600, maxForkCount: 16 };

/** The lifecycle bodies, bounded by the control plane's limits. */
export function sandboxBodySchemas(limits: SandboxLimits) {
  const TimeoutSecSchema = z.number().int().min(1).max(limits.maxTimeoutSec);
  return {
    create: z.object({
      template: z.string().min(1).max(128).default("base"),
      vcpus: z.number().int().min(1).max(64).optional(),
      memory_mb: z
        .number()
        .int()
        .min(128)
        .max(1024 * 1024)
        .optional(),
      disk_mb: z
        .number()
        .int()
        .min(256)
        .max(16 * 1024 * 1024)
        .optional(),
      timeout_sec: TimeoutSecSchema.optional().describe("inactivity timeout"),
      on_timeout: OnTimeoutSchema.default("pause"),
      auto_resume: z
        .boolean()
        .default(false)
        .describe(
          "while paused, the first request through the sandbox proxy resumes it (needs on_timeout pause)",
        ),
      on_timeout_keep_memory: z
        .boolean()
        .default(true)
        .describe(
          "false: the timeout's pause keeps only the disk and a resume cold-boots (needs on_timeout pause, not auto_resume)",
        ),
      env: EnvVarsSchema.default({}),
      metadata: MetadataSchema.default({}),
      volume_mounts: z
        .array(VolumeMountSchema)
        .max(16)
        .optional()
        .describe("the team's volumes (by name or id) mounted at these guest paths"),
      network: SandboxNetworkCreateSchema.optional(),
      host_tags: HostTagsSchema.optional().describe(
        'place only on a host whose tags include all of these (e.g. {"zone": "a"})',
      ),
    }),
    setTimeout: z.object({ timeout_sec: TimeoutSecSchema }),
    pause: z.object({
      keep_memory: z
        .boolean()
        .default(true)
        .describe("false: keep only the disk (no memory snapshot); the next resume cold-boots from it"),
    }),
    resume: z.object({
      timeout_sec: TimeoutSecSchema.optional(),
      reboot: z
        .boolean()
        .default(false)
        .describe("cold-boot from the disk even when the pause kept memory (processes do not survive)"),
    }),
    fork: z.object({
      count: z.number().int().min(1).max(limits.maxForkCount).default(1),
      metadata: MetadataSchema.default({}),
    }),
  };
}

type Bodies = ReturnType<typeof sandboxBodySchemas>;
/** What a client may send (defaults not yet applied). */
export type SandboxCreateBody = z.input<Bodies["create"]>;
export type SandboxSetTimeoutBody = z.input<Bodies["setTimeout"]>;
export type SandboxPauseBody = z.input<Bodies["pause"]>;
export type SandboxResumeBody = z.input<Bodies["resume"]>;
export type SandboxForkBody = z.input<Bodies["fork"]>;

/** `metadata=a%3D1%26b%3D2`: a URL-encoded query string of key=value pairs. */
export const MetadataFilterSchema = z
  .string()
  .max(4096)
  .transform((s) => Object.fromEntries(new URLSearchParams(s)))
  .pipe(MetadataSchema);

/** `GET /v1/sandboxes`: a page, filtered by states (comma-separated) and metadata pairs. */
export const SandboxListQuerySchema = PaginationQuerySchema.extend({
  state: z
    .string()
    .transform((s) => s.split(",").filter(Boolean))
    .pipe(z.array(SandboxStateSchema))
    .optional()
    .describe("comma-separated states"),
  metadata: MetadataFilterSchema.optional().describe("URL-encoded key=value pairs, all must match"),
});
export type SandboxListQuery = z.input<typeof SandboxListQuerySchema>;

const ProcessBodySchema = z.object({
  command: z
    .string()
    .min(1)
    .max(128 * 1024)
    .describe("run as /bin/bash -l -c <command>"),
  envs: EnvVarsSchema.optional(),
  cwd: z.string().max(4096).optional(),
  user: z.string().max(64).optional(),
});

export const ExecBodySchema = ProcessBodySchema.extend({
  timeout_ms: z
    .number()
    .int()
    .min(1)
    .max(24 * 3600 * 1000)
    .optional(),
  stdin: z
    .string()
    .max(4 * 1024 * 1024)
    .optional(),
});
export type ExecBody = z.input<typeof ExecBodySchema>;

export const StartProcessBodySchema = ProcessBodySchema.extend({ tag: z.string().max(128).optional() });
export type StartProcessBody = z.input<typeof StartProcessBodySchema>;

export const SignalNameSchema = z.enum(["SIGTERM", "SIGKILL"]);
export type SignalName = z.infer<typeof SignalNameSchema>;

export const PathQuerySchema = z.object({
  path: z.string().min(1).max(4096),
  user: z.string().max(64).optional(),
});

export const ListDirQuerySchema = PathQuerySchema.extend({
  depth: z.coerce.number().int().min(1).max(16).default(1),
});

export const MakeDirBodySchema = z.object({
  path: z.string().min(1).max(4096),
  user: z.string().max(64).optional(),
});
export type MakeDirBody = z.input<typeof MakeDirBodySchema>;

export const SnapshotDeleteQuerySchema = z.object({
  force: z
    .enum(["true", "false"])
    .default("false")
    .transform((v) => v === "true")
    .describe("delete even while sandboxes depend on it"),
});
export type SnapshotDeleteQuery = z.input<typeof SnapshotDeleteQuerySchema>;

export const SnapshotCreateBodySchema = z.object({
  sandbox_id: z.string().min(1).max(128),
  name: NameSchema,
});
export type SnapshotCreateBody = z.input<typeof SnapshotCreateBodySchema>;

export const ApiKeyCreateBodySchema = z.object({ name: z.string().min(1).max(128) });
export type ApiKeyCreateBody = z.input<typeof ApiKeyCreateBodySchema>;
