import { readFile } from "node:fs/promises";
import type { Logger } from "@wrenn/shared";

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Parses an /etc/environment style file (pam_env's simple form): `NAME=value` per line,
 * value optionally in single or double quotes, `#` comments and blank lines skipped. Lines
 * that are not assignments are ignored, as pam_env does.
 */
export function parseEnvironmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim().replace(/^export\s+/, "");
    if (line === "" || line.startsWith("#")) continue;
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    const name = line.slice(0, eq);
    if (!NAME.test(name)) continue;
    let value = line.slice(eq + 1);
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
    }
    env[name] = value;
  }
  return env;
}

/**
 * The image's environment for every process envd starts (the guest image puts e.g.
 * NODE_EXTRA_CA_CERTS there). A missing file is an empty environment; read once at start.
 */
export async function readImageEnv(
  path: string | undefined,
  logger: Logger,
): Promise<Record<string, string>> {
  if (path === undefined) return {};
  try {
    return parseEnvironmentFile(await readFile(path, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      logger.warn("image environment file not read", { path, err });
    }
    return {};
  }
}
