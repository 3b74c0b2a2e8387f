import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/** Names the fault suite gives what it makes on the host (tests/sweep-test-leftovers.ts removes leftovers). */
export const FAULT_MOUNT_PREFIX = "wrenn-fault-mnt-";
export const FAULT_CHAIN_PREFIX = "wrennfault-";

const PG_DIR = process.env.WRENN_PG_TEST_DIR || "/var/tmp/wrenn-postgres-test";

function pgCtl(): string {
  const versions = readdirSync("/usr/lib/postgresql").sort((a, b) => Number(a) - Number(b));
  const latest = versions.at(-1);
  if (!latest) throw new Error("no PostgreSQL server under /usr/lib/postgresql");
  return `/usr/lib/postgresql/${latest}/bin/pg_ctl`;
}

/**
 * Restarts the test cluster (scripts/ensure-postgres.sh) as its owner, `-m fast`: every
 * connection is closed, the server is down for about a second, then takes connections again
 * with the options it was started with.
 */
export async function restartPostgres(): Promise<void> {
  const args = ["-D", PG_DIR, "-l", join(PG_DIR, "server.log"), "-w", "-t", "60", "-m", "fast", "restart"];
  const command =
    process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", pgCtl(), ...args] : [pgCtl(), ...args];
  await promisify(execFile)(command[0] as string, command.slice(1));
}

/** A small tmpfs mounted for one agent's data dir, filled on demand to make it run out of space. */
export class SmallDisk {
  private constructor(readonly path: string) {}

  static create(sizeMiB: number): SmallDisk {
    const path = mkdtempSync(join(tmpdir(), FAULT_MOUNT_PREFIX));
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${sizeMiB}m,mode=0755`, "tmpfs", path]);
    return new SmallDisk(path);
  }

  /** Free bytes on the file system now. */
  freeBytes(): number {
    const s = statfsSync(this.path);
    return s.bavail * s.bsize;
  }

  /** Takes all but `leaveBytes` of the free space with one preallocated file. */
  fill(leaveBytes: number): void {
    const take = this.freeBytes() - leaveBytes;
    if (take > 0) execFileSync("fallocate", ["-l", String(take), join(this.path, "filler")]);
  }

  unfill(): void {
    rmSync(join(this.path, "filler"), { force: true });
  }

  /** Unmounts (lazily, should something still hold it) and removes the mount point. */
  close(): void {
    unmountFaultMount(this.path);
  }
}

function unmountFaultMount(path: string): void {
  try {
    execFileSync("umount", ["-l", path], { stdio: "ignore" });
  } catch {
    // not mounted
  }
  rmSync(path, { recursive: true, force: true });
}

/**
 * Drops the control plane's traffic to one agent: loopback TCP to the agent's RPC and traffic
 * ports goes to a chain of this run's own that DROPs it (no reset: callers see timeouts, as
 * with a cut cable). Nothing else on the host is touched.
 */
export class LinkDrop {
  readonly chain = `${FAULT_CHAIN_PREFIX}${process.pid}`;
  private readonly jump: string[];

  constructor(ports: number[]) {
    this.jump = [
      "INPUT",
      "-i",
      "lo",
      "-p",
      "tcp",
      "-m",
      "multiport",
      "--dports",
      ports.join(","),
      "-j",
      this.chain,
    ];
    execFileSync("iptables", ["-N", this.chain]);
    execFileSync("iptables", ["-A", this.chain, "-j", "DROP"]);
  }

  drop(): void {
    execFileSync("iptables", ["-I", ...this.jump]);
  }

  restore(): void {
    try {
      execFileSync("iptables", ["-D", ...this.jump], { stdio: "ignore" });
    } catch {
      // not dropped
    }
  }

  close(): void {
    this.restore();
    removeFaultChain(this.chain);
  }
}

function removeFaultChain(chain: string): void {
  for (const args of [
    ["-F", chain],
    ["-X", chain],
  ]) {
    try {
      execFileSync("iptables", args, { stdio: "ignore" });
    } catch {
      // gone already
    }
  }
}

/**
 * What an interrupted fault run left: its tmpfs mounts and its iptables chains (with the
 * INPUT rules that jump to them), for the suite's leftover sweep. Returns what it removed.
 */
export function sweepFaultInjections(): string[] {
  const swept: string[] = [];
  const mounts = readFileSync("/proc/mounts", "utf8").split("\n");
  for (const line of mounts) {
    const target = line.split(" ")[1] ?? "";
    if (target.startsWith(join(tmpdir(), FAULT_MOUNT_PREFIX))) {
      unmountFaultMount(target);
      swept.push(`mount ${target}`);
    }
  }
  const rules = execFileSync("iptables-save", ["-t", "filter"], { encoding: "utf8" }).split("\n");
  const chains = new Set<string>();
  for (const line of rules) {
    const chain = new RegExp(`^:(${FAULT_CHAIN_PREFIX}\\d+) `).exec(line)?.[1];
    if (chain) chains.add(chain);
    const jump = new RegExp(`^-A (\\S+) (.* -j ${FAULT_CHAIN_PREFIX}\\d+)$`).exec(line);
    if (jump?.[1] && jump[2]) {
      try {
        execFileSync("iptables", ["-D", jump[1], ...jump[2].split(" ")], { stdio: "ignore" });
      } catch {
        // gone already
      }
    }
  }
  for (const chain of chains) {
    removeFaultChain(chain);
    swept.push(`iptables chain ${chain}`);
  }
  return swept;
}
