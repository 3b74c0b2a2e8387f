import { readFile } from "node:fs/promises";

/**
 * Parses a credentials file: `KEY=value` lines, `#` comments and blank lines ignored,
 * an optional `export ` prefix, and values optionally in single or double quotes.
 */
export function parseCredentials(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (!m?.[1]) continue;
    let value = (m[2] ?? "").trim();
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) value = quoted[2] ?? "";
    out[m[1]] = value;
  }
  return out;
}

/** Reads and parses a credentials file; a missing file is an empty result, other errors throw. */
export async function readCredentialsFile(path: string): Promise<Record<string, string>> {
  try {
    return parseCredentials(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw err;
  }
}
