import { WrennError } from "@wrenn/shared";
import { type ZodError, type ZodType, z } from "zod";

/** Zod issues as one message that names each offending field. */
export function formatZodError(error: ZodError, where: string): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.map(String).join(".");
      return `${path ? `${where === "body" ? "" : `${where}.`}${path}` : where}: ${issue.message}`;
    })
    .join("; ");
}

/** Parses input with a schema, or throws `invalid_argument` naming the field. */
export function parseInput<T>(schema: ZodType<T>, value: unknown, where: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new WrennError("invalid_argument", formatZodError(result.error, where));
  return result.data;
}

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

export interface Cursor {
  createdAt: Date;
  id: string;
}

/** Keyset pagination cursors: opaque to callers, (created_at, id) inside. */
export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt.toISOString(), cursor.id])).toString("base64url");
}

export function decodeCursor(value: string | undefined): Cursor | null {
  if (!value) return null;
  try {
    const parsed = JSON.parse(Buffer.from(value, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(parsed) && typeof parsed[0] === "string" && typeof parsed[1] === "string") {
      const createdAt = new Date(parsed[0]);
      if (!Number.isNaN(createdAt.getTime())) return { createdAt, id: parsed[1] };
    }
  } catch {
    // fall through to the error below
  }
  throw new WrennError("invalid_argument", "query.cursor: not a cursor returned by this API");
}

/** One page of a list and the cursor of the next (null at the end). */
export function pageOf<T, R extends { created_at: Date; id: string }>(
  rows: R[],
  limit: number,
  view: (row: R) => T,
): { items: T[]; next_cursor: string | null } {
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  const last = page[page.length - 1];
  return {
    items: page.map(view),
    next_cursor: more && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
  };
}

export function pageSchema<T extends ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}
