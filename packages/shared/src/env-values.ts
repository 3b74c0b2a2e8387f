/** Helpers for the one place each process reads its environment into an options object. */

/** A numeric variable: undefined when unset or empty (so the schema's default applies). */
export function envNumber(value: string | undefined): number | undefined {
  return value === undefined || value === "" ? undefined : Number(value);
}

/** Drops unset and empty entries, so only variables that were given reach validation. */
export function definedEntries(raw: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined && v !== ""));
}
