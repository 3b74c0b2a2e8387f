import { type RawBuilder, sql } from "kysely";
import type { Cursor } from "../validation.js";

/**
 * Rows after a keyset cursor in (created_at, id) order: the one condition every paged list
 * adds (row comparison, so ties on created_at are broken by id).
 */
export function afterCursor(cursor: Cursor): RawBuilder<boolean> {
  return sql<boolean>`(created_at, id) > (${cursor.createdAt}, ${cursor.id})`;
}

/** Rows before a keyset cursor: the same condition for a list read newest first. */
export function beforeCursor(cursor: Cursor): RawBuilder<boolean> {
  return sql<boolean>`(created_at, id) < (${cursor.createdAt}, ${cursor.id})`;
}
