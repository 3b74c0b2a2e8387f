import { WrennError } from "@wrenn/shared";
import type { ZodError, ZodType } from "zod";

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
