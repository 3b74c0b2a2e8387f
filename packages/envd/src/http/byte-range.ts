/** An inclusive byte range of a file. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangeResult = { kind: "none" } | { kind: "range"; range: ByteRange } | { kind: "unsatisfiable" };

/**
 * Parses a Range header for a file of `size` bytes. One range is served as 206; a header
 * asking for several is answered with the whole file (allowed by RFC 9110, and what the
 * SDK never sends). Malformed or unsatisfiable ranges are 416 ("unsatisfiable"), like Go's
 * http.ServeContent, so a bad request is visible rather than silently ignored.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined || header === "") return { kind: "none" };
  const match = /^bytes=(.+)$/i.exec(header.trim());
  if (!match?.[1]) return { kind: "unsatisfiable" };
  const specs = match[1].split(",").map((s) => s.trim());
  if (specs.length > 1)
    return specs.every((s) => /^\d*-\d*$/.test(s) && s !== "-")
      ? { kind: "none" }
      : { kind: "unsatisfiable" };
  const spec = /^(\d*)-(\d*)$/.exec(specs[0] ?? "");
  if (!spec) return { kind: "unsatisfiable" };
  const [, first = "", last = ""] = spec;
  if (first === "" && last === "") return { kind: "unsatisfiable" };
  if (first === "") {
    // Suffix range: the last N bytes.
    const n = Number(last);
    if (n === 0 || size === 0) return { kind: "unsatisfiable" };
    return { kind: "range", range: { start: Math.max(0, size - n), end: size - 1 } };
  }
  const start = Number(first);
  if (!Number.isSafeInteger(start) || start >= size) return { kind: "unsatisfiable" };
  let end = last === "" ? size - 1 : Number(last);
  if (!Number.isSafeInteger(end) || end < start) return { kind: "unsatisfiable" };
  end = Math.min(end, size - 1);
  return { kind: "range", range: { start, end } };
}
