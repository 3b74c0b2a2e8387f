import { parseArgs } from "node:util";
import { WrennError } from "@wrenn/shared";

/** `wrenn-agent [serve|probe-accel] [--register <token>] [--control-plane <url>] [--advertise-url <url>] [--tag k=v …] [--ca <pem>]`. */
export interface AgentArgs {
  command: "serve" | "probe-accel";
  /** A one-time registration token: enrol with the control plane after the listener is up. */
  register?: string | undefined;
  controlPlaneUrl?: string | undefined;
  advertiseUrl?: string | undefined;
  caPath?: string | undefined;
  tags: Record<string, string>;
}

export const AGENT_USAGE =
  "usage: wrenn-agent [serve|probe-accel] [--register <token> --control-plane <url>] [--advertise-url <url>] [--tag key=value …] [--ca <cp-ca.pem>]";

/** `k=v` pairs (repeated flags, or comma-separated in one) into a tag object. */
export function parseTags(pairs: readonly string[]): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const pair of pairs
    .flatMap((p) => p.split(","))
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new WrennError("invalid_argument", `--tag ${pair}: expected key=value`);
    tags[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return tags;
}

/**
 * The command line, with `WRENN_AGENT_REGISTER_TOKEN` standing in for `--register` (a token on
 * the command line is visible in `ps` while the agent enrols).
 */
export function parseAgentArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): AgentArgs {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new WrennError("invalid_argument", (err as Error).message);
  }
  const [command = "serve", ...rest] = parsed.positionals;
  if ((command !== "serve" && command !== "probe-accel") || rest.length > 0) {
    throw new WrennError("invalid_argument", `unknown command ${[command, ...rest].join(" ")}`);
  }
  const v = parsed.values;
  const register = v.register ?? (env.WRENN_AGENT_REGISTER_TOKEN || undefined);
  if (register !== undefined && !v["control-plane"] && !env.WRENN_CONTROL_PLANE_URL) {
    throw new WrennError("invalid_argument", "--register needs --control-plane <url>");
  }
  return {
    command,
    register,
    controlPlaneUrl: v["control-plane"],
    advertiseUrl: v["advertise-url"],
    caPath: v.ca,
    tags: parseTags(v.tag ?? []),
  };
}

const OPTIONS = {
  register: { type: "string" },
  "control-plane": { type: "string" },
  "advertise-url": { type: "string" },
  tag: { type: "string", multiple: true },
  ca: { type: "string" },
} as const;
