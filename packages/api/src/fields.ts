import { z } from "zod";

/** Field types several /v1 schemas share. */

export const TimestampSchema = z.string().describe("RFC 3339 timestamp");

/** Free-form string labels on sandboxes: bounded so a caller cannot store megabytes. */
export const MetadataSchema = z
  .record(z.string().min(1).max(128), z.string().max(1024))
  .refine((m) => Object.keys(m).length <= 64, "at most 64 entries");

export const EnvVarsSchema = z
  .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "not a valid environment variable name"), z.string())
  .refine((m) => Object.keys(m).length <= 256, "at most 256 entries");

/** Names of snapshots, channels, keys: readable, URL-safe. */
export const NameSchema = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/,
    "letters, digits, '.', '_' and '-', starting with a letter or digit",
  );

export const IdParamsSchema = z.object({ id: z.string().min(1).max(128) });

export const PaginationQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(512).optional(),
});

/** One page of a list; pass `next_cursor` as `cursor` for the next (null at the end). */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}

/** A whole (unpaginated) list. */
export function listSchema<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item) });
}
