import { z } from "zod";
import { EnvVarsSchema, NameSchema, TimestampSchema } from "./fields.js";

/**
 * Template builds: a base (an image or another template), steps run in a VM one after
 * another, and an optional start command whose process is running in every sandbox made
 * from the result. This is the one contract of a build: the /v1 API, the E2B template API
 * (translated on arrival), the CLI's build file and the SDK all produce it.
 */

/** sha256 hex of a copy step's uploaded tar.gz (the /v1 upload checks it; E2B's is the SDK's own hash). */
export const FilesHashSchema = z
  .string()
  .regex(/^[a-f0-9]{64}$/, "a sha256 hex digest (64 lowercase hex characters)");

const UserSchema = z
  .string()
  .min(1)
  .max(32)
  .regex(/^[a-z_][a-z0-9_-]*$/, "a Linux user name");
const GuestPathSchema = z.string().min(1).max(4096);

export const BuildStepSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("run"),
    /** A bash command line (`bash -l -c`). */
    command: z.string().min(1).max(65_536),
    /** Who runs it; default the user set by the latest `user` step ("user" at first). */
    user: UserSchema.optional(),
  }),
  z.object({
    type: z.literal("copy"),
    /** The uploaded archive holding `src` (see PUT /v1/template-files/{hash}). */
    files_hash: FilesHashSchema,
    /** The path inside the archive that is copied (a file or directory). */
    src: z.string().min(1).max(4096),
    dest: GuestPathSchema,
    user: UserSchema.optional(),
    /** Octal file mode applied to what was copied, e.g. "0644". */
    mode: z
      .string()
      .regex(/^0?[0-7]{3,4}$/, "an octal mode such as 0644")
      .optional(),
  }),
  z.object({ type: z.literal("env"), vars: EnvVarsSchema }),
  z.object({ type: z.literal("workdir"), path: GuestPathSchema }),
  z.object({ type: z.literal("user"), name: UserSchema }),
]);
export type BuildStep = z.infer<typeof BuildStepSchema>;

/** Where a build starts: an image a host can boot, or another template (layering). */
export const BuildBaseSchema = z.union([
  z.object({ image: z.string().min(1).max(128) }).strict(),
  z.object({ template: z.string().min(1).max(128) }).strict(),
]);
export type BuildBase = z.infer<typeof BuildBaseSchema>;

export const BuildSpecSchema = z.object({
  from: BuildBaseSchema.default({ image: "base" }),
  steps: z.array(BuildStepSchema).max(200).default([]),
  /** Started (as the final user, in the final workdir) before the snapshot; running in every sandbox. */
  start_cmd: z.string().min(1).max(65_536).optional(),
  /** Retried every second until it exits 0 (or `ready_timeout_sec` passes), then the snapshot is taken. */
  ready_cmd: z.string().min(1).max(65_536).optional(),
  ready_timeout_sec: z.number().int().min(1).max(3600).default(120),
  /** Run every step again, ignoring the step cache. */
  force: z.boolean().default(false),
});
export type BuildSpec = z.infer<typeof BuildSpecSchema>;
export type BuildSpecInput = z.input<typeof BuildSpecSchema>;

/** Template names: a name, optionally `name:tag` in the E2B style (the tag names a build). */
export const TemplateNameSchema = NameSchema;
export const TagSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]*$/, "letters, digits, '.', '_' and '-'");

export const TemplateBuildBodySchema = BuildSpecSchema.extend({
  name: TemplateNameSchema,
  /** Tags the finished build gets besides "latest". */
  tags: z.array(TagSchema).max(16).default([]),
  vcpus: z.number().int().min(1).max(64).optional(),
  memory_mb: z.number().int().min(128).max(262_144).optional(),
  disk_mb: z.number().int().min(256).max(1_048_576).optional(),
});
export type TemplateBuildBody = z.input<typeof TemplateBuildBodySchema>;

export const BUILD_STATUSES = ["waiting", "building", "ready", "error"] as const;
export const BuildStatusSchema = z.enum(BUILD_STATUSES);
export type BuildStatus = z.infer<typeof BuildStatusSchema>;

export const BuildLogEntrySchema = z.object({
  /** Position in the build's log; ask for `offset` = last + 1 to continue. */
  offset: z.number().int(),
  timestamp: TimestampSchema,
  level: z.enum(["debug", "info", "warn", "error"]),
  /** "base", a step number from 1, "start", "ready", "snapshot", or "" for the build itself. */
  step: z.string(),
  message: z.string(),
});
export type BuildLogEntryView = z.infer<typeof BuildLogEntrySchema>;

export const BuildSchema = z.object({
  id: z.string(),
  template_id: z.string(),
  template: z.string(),
  status: BuildStatusSchema,
  tags: z.array(z.string()),
  host_id: z.string().nullable(),
  vcpus: z.number().int(),
  memory_mb: z.number().int(),
  disk_mb: z.number().int(),
  /** Steps taken from the cache (not run again) out of `steps_total`. */
  steps_cached: z.number().int(),
  steps_total: z.number().int(),
  error: z.object({ message: z.string(), step: z.string().nullable() }).nullable(),
  created_at: TimestampSchema,
  finished_at: TimestampSchema.nullable(),
});
export type BuildView = z.infer<typeof BuildSchema>;

export const BuildLogsQuerySchema = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

export const BuildLogsSchema = z.object({
  status: BuildStatusSchema,
  entries: z.array(BuildLogEntrySchema),
  /** Pass as `offset` to get what follows. */
  next_offset: z.number().int(),
});
export type BuildLogsView = z.infer<typeof BuildLogsSchema>;

export const TemplateFilePresenceSchema = z.object({ hash: FilesHashSchema, present: z.boolean() });

export const BuiltTemplateSchema = z.object({
  template: z.object({ id: z.string(), name: z.string() }),
  build: BuildSchema,
});

export { UserSchema as BuildUserSchema };
