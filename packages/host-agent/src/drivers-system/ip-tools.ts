import { type CommandResult, runCommand } from "./run-command.js";

/**
 * Thin wrappers over iproute2, iptables and sysctl. They build argv and parse output;
 * what to configure is decided by the callers (network/).
 */

const IP_TIMEOUT_MS = 10_000;
const IPTABLES_TIMEOUT_MS = 20_000;

/** One failed line of an `ip -batch` run. */
export interface BatchFailure {
  /** 1-based line of the batch input. */
  line: number;
  /** What ip printed for it (e.g. `RTNETLINK answers: File exists`). */
  message: string;
}

/** Runs iproute2 commands in one process (`ip [-n ns] [-force] -batch -`), one command per line. */
export function ipBatch(
  lines: readonly string[],
  options: { netns?: string; force?: boolean } = {},
): Promise<CommandResult> {
  const args = [
    ...(options.netns ? ["-n", options.netns] : []),
    ...(options.force ? ["-force"] : []),
    "-batch",
    "-",
  ];
  return runCommand("ip", args, { input: `${lines.join("\n")}\n`, timeoutMs: IP_TIMEOUT_MS });
}

/** Parses ip's `Command failed -:N` markers; the lines printed before each marker are its message. */
export function parseBatchFailures(stderr: string): BatchFailure[] {
  const failures: BatchFailure[] = [];
  let pending: string[] = [];
  for (const raw of stderr.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const marker = /^Command failed \S*:(\d+)$/.exec(line);
    if (marker) {
      failures.push({ line: Number(marker[1]), message: pending.join("; ") });
      pending = [];
    } else {
      pending.push(line);
    }
  }
  return failures;
}

/** True for ip's "there is nothing of that name" answers (link, namespace, route, address). */
export function isMissingObjectMessage(message: string): boolean {
  return /Cannot find device|No such file or directory|No such process|does not exist|Cannot assign requested address/i.test(
    message,
  );
}

export function ip(args: readonly string[], netns?: string): Promise<CommandResult> {
  return runCommand("ip", [...(netns ? ["-n", netns] : []), ...args], { timeoutMs: IP_TIMEOUT_MS });
}

/** Runs a program inside a named network namespace. */
export function netnsExec(
  netns: string,
  file: string,
  args: readonly string[],
  options: { input?: string; timeoutMs?: number } = {},
): Promise<CommandResult> {
  return runCommand("ip", ["netns", "exec", netns, file, ...args], {
    timeoutMs: options.timeoutMs ?? IP_TIMEOUT_MS,
    ...(options.input !== undefined ? { input: options.input } : {}),
  });
}

/**
 * Writes sysctls (`key=value`) in the host's or a namespace's network stack. With `ignoreUnknown`
 * keys the kernel lacks (e.g. IPv6 ones on a kernel without IPv6) are skipped.
 */
export async function sysctlWrite(
  settings: readonly string[],
  netns?: string,
  options: { ignoreUnknown?: boolean } = {},
): Promise<void> {
  const args = ["-q", ...(options.ignoreUnknown ? ["-e"] : []), "-w", ...settings];
  if (netns) await netnsExec(netns, "sysctl", args);
  else await runCommand("sysctl", args, { timeoutMs: IP_TIMEOUT_MS });
}

export async function sysctlRead(key: string): Promise<string> {
  const { stdout } = await runCommand("sysctl", ["-n", key], { timeoutMs: IP_TIMEOUT_MS });
  return stdout.trim();
}

/** `iptables-save` output for one table (or all), on the host or inside a namespace. */
export async function iptablesSave(options: { table?: string; netns?: string } = {}): Promise<string> {
  const args = options.table ? ["-t", options.table] : [];
  const { stdout } = options.netns
    ? await netnsExec(options.netns, "iptables-save", args, { timeoutMs: IPTABLES_TIMEOUT_MS })
    : await runCommand("iptables-save", args, { timeoutMs: IPTABLES_TIMEOUT_MS });
  return stdout;
}

/**
 * Applies an iptables-restore document as one transaction. With `noflush` only the chains it
 * declares are flushed (a `:CHAIN - [0:0]` line creates or empties a user chain).
 */
export async function iptablesRestore(
  text: string,
  options: { noflush?: boolean; netns?: string } = {},
): Promise<void> {
  const args = ["-w", ...(options.noflush ? ["--noflush"] : [])];
  if (options.netns)
    await netnsExec(options.netns, "iptables-restore", args, { input: text, timeoutMs: IPTABLES_TIMEOUT_MS });
  else await runCommand("iptables-restore", args, { input: text, timeoutMs: IPTABLES_TIMEOUT_MS });
}

/** Names listed by `ip netns list`. */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await ip(["netns", "list"]);
  return stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((name) => name !== "");
}

/** Link names in the host's namespace (or a named one), without the `@peer` suffix. */
export async function listLinks(netns?: string): Promise<string[]> {
  const { stdout } = await ip(["-o", "link", "show"], netns);
  const names: string[] = [];
  for (const m of stdout.matchAll(/^\d+:\s+([^:@\s]+)[@:]/gm)) if (m[1]) names.push(m[1]);
  return names;
}

/** The interface of the host's first IPv4 default route, if there is one. */
export async function defaultRouteInterface(): Promise<string | undefined> {
  const { stdout } = await ip(["-j", "-4", "route", "show", "default"]);
  const routes = JSON.parse(stdout || "[]") as Array<{ dev?: string }>;
  return routes.find((r) => r.dev)?.dev;
}

export async function linkMtu(name: string): Promise<number | undefined> {
  const { stdout } = await ip(["-j", "link", "show", "dev", name]);
  const links = JSON.parse(stdout || "[]") as Array<{ mtu?: number }>;
  return links[0]?.mtu;
}

/**
 * What on the host already holds these addresses: interfaces with an IPv4 address inside
 * `cidr`, and routes for exactly `routeCidr`. Each entry names the interface, e.g.
 * `address 10.12.0.2/31 on wa-vh-1`, `route 10.11.0.1 via wa-vh-1`.
 */
export async function ipv4Holders(cidr: string, routeCidr: string): Promise<string[]> {
  const [addrs, routes] = await Promise.all([
    ip(["-j", "-4", "addr", "show", "to", cidr]),
    ip(["-j", "-4", "route", "show", "exact", routeCidr]),
  ]);
  const holders: string[] = [];
  const links = JSON.parse(addrs.stdout || "[]") as Array<{
    ifname?: string;
    addr_info?: Array<{ local?: string; prefixlen?: number }>;
  }>;
  for (const link of links) {
    for (const a of link.addr_info ?? []) holders.push(`address ${a.local}/${a.prefixlen} on ${link.ifname}`);
  }
  const found = JSON.parse(routes.stdout || "[]") as Array<{ dst?: string; dev?: string }>;
  for (const r of found) holders.push(`route ${r.dst} via ${r.dev ?? "?"}`);
  return holders;
}

/** Runs `ss` on the host (e.g. `-K` with a filter to destroy sockets); returns what it printed. */
export async function ss(args: readonly string[]): Promise<string> {
  const { stdout } = await runCommand("ss", args, { timeoutMs: IP_TIMEOUT_MS });
  return stdout;
}
