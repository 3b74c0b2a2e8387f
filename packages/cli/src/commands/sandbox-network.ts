import { Sandbox, type SandboxInfo, type SandboxNetworkOptions } from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { type FlagValues, parseCommand, required, str, strs } from "../command-context.js";
import { formatAge } from "../format.js";

/** The network flags of `sandbox create` (parseArgs options). */
export const CREATE_NETWORK_FLAGS = {
  "allow-out": { type: "string", multiple: true },
  "deny-out": { type: "string", multiple: true },
  "no-internet": { type: "boolean", default: false },
  private: { type: "boolean", default: false },
  "mask-host": { type: "string" },
} as const;

/** `--allow-out a --allow-out b,c` → [a, b, c]; undefined when the flag is absent. */
function entries(values: FlagValues, flag: string): string[] | undefined {
  const raw = strs(values, flag);
  if (!raw) return undefined;
  return raw
    .flatMap((v) => v.split(","))
    .map((v) => v.trim())
    .filter(Boolean);
}

/** A create's network options from its flags; undefined when none is given. */
export function createNetworkOf(values: FlagValues): SandboxNetworkOptions | undefined {
  const allowOut = entries(values, "allow-out");
  const denyOut = entries(values, "deny-out");
  const noInternet = values["no-internet"] === true;
  const isPrivate = values.private === true;
  const maskHost = str(values, "mask-host");
  if (!allowOut && !denyOut && !noInternet && !isPrivate && maskHost === undefined) return undefined;
  return {
    ...(allowOut ? { allowOut } : {}),
    ...(denyOut ? { denyOut } : {}),
    ...(noInternet ? { allowInternetAccess: false } : {}),
    ...(isPrivate ? { allowPublicTraffic: false } : {}),
    ...(maskHost !== undefined ? { maskRequestHost: maskHost } : {}),
  };
}

/** A Sandbox handle for an id without fetching it first: commands and files need only the id. */
export function placeholderInfo(id: string): SandboxInfo {
  const epoch = new Date(0);
  return {
    sandboxId: id,
    teamId: "",
    hostId: null,
    template: "",
    snapshotId: null,
    state: "running",
    vcpus: 0,
    memoryMiB: 0,
    diskMiB: 0,
    timeoutSec: 0,
    onTimeout: "pause",
    autoResume: false,
    onTimeoutKeepMemory: true,
    pausedWithoutMemory: false,
    metadata: {},
    error: null,
    createdAt: epoch,
    updatedAt: epoch,
    expiresAt: null,
    stoppedAt: null,
    network: {
      allowOut: [],
      denyOut: [],
      allowInternetAccess: true,
      allowPublicTraffic: true,
      maskRequestHost: null,
    },
  };
}

function networkLines(info: SandboxInfo): string[] {
  const n = info.network;
  const open = n.allowOut.length === 0 && n.denyOut.length === 0;
  return [
    `egress:     ${open ? "open" : n.allowInternetAccess ? "restricted" : "deny all but allowed"}`,
    ...(n.allowOut.length ? [`allow out:  ${n.allowOut.join(", ")}`] : []),
    ...(n.denyOut.length ? [`deny out:   ${n.denyOut.join(", ")}`] : []),
    `traffic:    ${n.allowPublicTraffic ? "public" : "private (needs the traffic access token)"}`,
    ...(n.maskRequestHost ? [`host mask:  ${n.maskRequestHost}`] : []),
  ];
}

/** The lines `sandbox info` prints. */
export function infoText(info: SandboxInfo): string {
  const metadata = Object.entries(info.metadata)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
  return [
    `id:         ${info.sandboxId}`,
    `state:      ${info.state}`,
    `template:   ${info.template}${info.snapshotId ? ` (snapshot ${info.snapshotId})` : ""}`,
    `size:       ${info.vcpus} vCPU, ${info.memoryMiB}MiB memory, ${info.diskMiB}MiB disk`,
    `created:    ${formatAge(info.createdAt)}`,
    ...(metadata ? [`metadata:   ${metadata}`] : []),
    ...networkLines(info),
  ].join("\n");
}

/** `wrenn sandbox info <id>`. */
export async function sandboxInfo(io: CliIo, args: string[]): Promise<number> {
  const { positionals, ctx } = parseCommand(io, args, {});
  const id = required(positionals, 0, "id");
  const info = await new Sandbox(await ctx.client(), placeholderInfo(id)).getInfo();
  ctx.print(info, () => infoText(info));
  return 0;
}

/**
 * `wrenn sandbox network <id> [--allow-out X]... [--deny-out Y]... [--no-internet] | --open`:
 * replaces the whole egress policy; with no flags, shows it.
 */
export async function sandboxNetwork(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    "allow-out": CREATE_NETWORK_FLAGS["allow-out"],
    "deny-out": CREATE_NETWORK_FLAGS["deny-out"],
    "no-internet": CREATE_NETWORK_FLAGS["no-internet"],
    open: { type: "boolean", default: false },
  });
  const id = required(positionals, 0, "id");
  const allowOut = entries(values, "allow-out");
  const denyOut = entries(values, "deny-out");
  const noInternet = values["no-internet"] === true;
  const restricts = allowOut !== undefined || denyOut !== undefined || noInternet;
  if (values.open === true && restricts) {
    throw new UsageError("--open clears the policy: it takes no --allow-out, --deny-out or --no-internet");
  }
  const sandbox = new Sandbox(await ctx.client(), placeholderInfo(id));
  if (values.open !== true && !restricts) {
    const info = await sandbox.getInfo();
    ctx.print(info.network, () => networkLines(info).join("\n"));
    return 0;
  }
  const info = await ctx.step(`updating the network policy of ${id}`, () =>
    sandbox.updateNetwork({
      ...(allowOut ? { allowOut } : {}),
      ...(denyOut ? { denyOut } : {}),
      ...(noInternet ? { allowInternetAccess: false } : {}),
    }),
  );
  ctx.print(info.network, () => networkLines(info).join("\n"));
  return 0;
}
