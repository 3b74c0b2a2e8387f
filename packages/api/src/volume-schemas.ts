import { z } from "zod";
import { TimestampSchema } from "./fields.js";

/** Volumes: the /v1 bodies and views, and the entries of the volume content API. */

export const VolumeNameSchema = z
  .string()
  .regex(/^[a-zA-Z0-9_-]+$/)
  .max(64);

export const VolumeCreateBodySchema = z.object({
  name: VolumeNameSchema,
  size_mib: z.number().int().min(16).optional(),
});
export type VolumeCreateBody = z.input<typeof VolumeCreateBodySchema>;

export const VolumeSchema = z.object({
  id: z.string(),
  name: z.string(),
  host_id: z.string(),
  size_mib: z.number().int(),
  created_at: TimestampSchema,
});
export type VolumeView = z.infer<typeof VolumeSchema>;

/** Create and get also return the bearer token of the volume's content API (`/volumecontent/{id}/…`). */
export const VolumeWithTokenSchema = VolumeSchema.extend({ content_token: z.string() });
export type VolumeWithTokenView = z.infer<typeof VolumeWithTokenSchema>;

/** A volume (by name or id) mounted into a sandbox at create, at an absolute guest path. */
export const VolumeMountSchema = z.object({
  volume: z.string().min(1).max(128),
  path: z.string().min(1).max(4096),
});
export type VolumeMountBody = z.input<typeof VolumeMountSchema>;

export const VolumeEntryTypeSchema = z.enum(["unknown", "file", "directory", "symlink"]);

/** One entry of a volume, as the content API reports it (mode holds the permission bits). */
export const VolumeEntrySchema = z.object({
  name: z.string(),
  type: VolumeEntryTypeSchema,
  path: z.string(),
  size: z.number(),
  mode: z.number(),
  uid: z.number(),
  gid: z.number(),
  atime: TimestampSchema,
  mtime: TimestampSchema,
  ctime: TimestampSchema,
  target: z.string().optional(),
});
export type VolumeEntryView = z.infer<typeof VolumeEntrySchema>;

/** The PATCH body of `/volumecontent/{id}/path`: a new owner or mode. */
export const VolumeMetadataBodySchema = z
  .object({
    uid: z.number().int().min(0).max(0xffff_ffff).optional(),
    gid: z.number().int().min(0).max(0xffff_ffff).optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  })
  .strict();
export type VolumeMetadataBody = z.input<typeof VolumeMetadataBodySchema>;
