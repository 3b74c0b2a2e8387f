import { constants, existsSync } from "node:fs";
import { access, mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";

export interface VmmLimits {
  /** Hard memory limit for the whole VMM process: guest RAM plus the VMM's own overhead. */
  memoryBytes: number;
  /** CPU quota in cores (quota = vcpus × period). */
  vcpus: number;
}

export interface VmmCgroupsOptions {
  logger: Logger;
  /** Where the cgroup filesystems are mounted. */
  root?: string;
  /** Name of the parent group that holds one group per sandbox (tests use their own). */
  parentName?: string;
}

/** CFS period; the quota is vcpus × this. */
export const CPU_PERIOD_US = 100_000;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * One host cgroup per sandbox for its VMM process, so one sandbox cannot starve the host:
 * a hard memory limit and a CPU quota of `vcpus` cores. cgroup v2 when the unified
 * hierarchy is mounted at the root, else the v1 `memory` and `cpu` controllers
 * (`<root>/memory/<parent>/<id>`, `<root>/cpu/<parent>/<id>`).
 *
 * The groups are made before the VMM starts and the VMM joins them before it execs
 * (see `procsFiles`), so every page it allocates is charged there; they are removed
 * once the VMM has exited.
 */
export class VmmCgroups {
  private constructor(
    readonly version: 1 | 2,
    private readonly root: string,
    private readonly parentName: string,
    private readonly logger: Logger,
  ) {}

  static async create(options: VmmCgroupsOptions): Promise<VmmCgroups> {
    const root = options.root ?? "/sys/fs/cgroup";
    const v2 = await access(join(root, "cgroup.controllers"), constants.R_OK).then(
      () => true,
      () => false,
    );
    return new VmmCgroups(v2 ? 2 : 1, root, options.parentName ?? "wrenn", options.logger);
  }

  /** Synchronous variant of create() for wiring code that is not async (same detection). */
  static detect(logger: Logger, root = "/sys/fs/cgroup", parentName = "wrenn"): VmmCgroups {
    return new VmmCgroups(existsSync(join(root, "cgroup.controllers")) ? 2 : 1, root, parentName, logger);
  }

  get description(): string {
    return this.version === 2
      ? `cgroup v2 (memory.max, cpu.max) under ${join(this.root, this.parentName)}`
      : `cgroup v1 (memory, cpu) under ${join(this.root, "{memory,cpu}", this.parentName)}`;
  }

  private parents(): string[] {
    if (this.version === 2) return [join(this.root, this.parentName)];
    return [join(this.root, "memory", this.parentName), join(this.root, "cpu", this.parentName)];
  }

  /** The sandbox's group directories (one on v2; memory then cpu on v1). */
  dirs(id: string): string[] {
    checkId(id);
    return this.parents().map((p) => join(p, id));
  }

  /**
   * Creates the sandbox's groups with their limits (idempotent: an existing group gets the
   * new limits) and returns the `cgroup.procs` files a process must write its pid to.
   */
  async prepare(id: string, limits: VmmLimits): Promise<string[]> {
    validateLimits(limits);
    const dirs = this.dirs(id);
    try {
      if (this.version === 2) {
        const parent = join(this.root, this.parentName);
        await mkdir(parent, { recursive: true });
        await enableControllers(join(this.root, "cgroup.subtree_control"));
        await enableControllers(join(parent, "cgroup.subtree_control"));
        const [dir] = dirs as [string];
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, "memory.max"), String(limits.memoryBytes));
        await writeFile(join(dir, "memory.swap.max"), "0").catch(() => {});
        await writeFile(join(dir, "cpu.max"), `${limits.vcpus * CPU_PERIOD_US} ${CPU_PERIOD_US}`);
      } else {
        const [memDir, cpuDir] = dirs as [string, string];
        await mkdir(memDir, { recursive: true });
        await writeFile(join(memDir, "memory.limit_in_bytes"), String(limits.memoryBytes));
        // Charges made before a move (adopt re-placement) follow the process.
        await writeFile(join(memDir, "memory.move_charge_at_immigrate"), "3").catch(() => {});
        await mkdir(cpuDir, { recursive: true });
        await writeFile(join(cpuDir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
        await writeFile(join(cpuDir, "cpu.cfs_quota_us"), String(limits.vcpus * CPU_PERIOD_US));
      }
    } catch (err) {
      await this.remove(id);
      throw new WrennError(
        "internal",
        `cannot create host cgroup for ${id} (${this.description}): ${(err as Error).message}`,
        { cause: err },
      );
    }
    return dirs.map((d) => join(d, "cgroup.procs"));
  }

  /** Creates the groups (if needed) and moves a running process into them. */
  async place(id: string, pid: number, limits: VmmLimits): Promise<void> {
    const files = await this.prepare(id, limits);
    try {
      for (const file of files) await writeFile(file, String(pid));
    } catch (err) {
      throw new WrennError(
        "internal",
        `cannot move pid ${pid} into cgroup ${id}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }

  /** Pids currently in the sandbox's group (empty when it does not exist). */
  async pids(id: string): Promise<number[]> {
    const [dir] = this.dirs(id) as [string];
    const text = await readFile(join(dir, "cgroup.procs"), "utf8").catch(() => "");
    return text
      .split("\n")
      .filter(Boolean)
      .map((line) => Number(line));
  }

  async exists(id: string): Promise<boolean> {
    for (const dir of this.dirs(id)) {
      if (
        await access(dir).then(
          () => true,
          () => false,
        )
      )
        return true;
    }
    return false;
  }

  /**
   * Removes the sandbox's groups; call once its VMM has exited (a group with a live
   * process cannot be removed). Idempotent. Retries EBUSY briefly while the exiting
   * process is reaped; returns false if a group is still there.
   */
  async remove(id: string, options: { waitMs?: number } = {}): Promise<boolean> {
    const deadline = Date.now() + (options.waitMs ?? 2000);
    let ok = true;
    for (const dir of this.dirs(id)) {
      for (;;) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") break;
          if (code === "EBUSY" && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          this.logger.warn("cannot remove VMM cgroup", { dir, code });
          ok = false;
          break;
        }
      }
    }
    return ok;
  }

  /** Ids of sandbox groups present on the host. */
  async list(): Promise<string[]> {
    const ids = new Set<string>();
    for (const parent of this.parents()) {
      const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
      for (const e of entries) if (e.isDirectory()) ids.add(e.name);
    }
    return [...ids].sort();
  }

  /**
   * Removes the groups not in `keep` (leftovers of a crash), first killing every process
   * still in them: a VMM whose pid never reached its sandbox's record is still in its
   * group, and nothing else belongs there. Returns the ids removed.
   */
  async reapStray(keep: ReadonlySet<string>): Promise<string[]> {
    const removed: string[] = [];
    for (const id of await this.list()) {
      if (keep.has(id)) continue;
      for (const pid of await this.pids(id)) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      await this.remove(id);
      removed.push(id);
    }
    return removed;
  }

  /** Removes the (empty) parent group itself: for tests and uninstall. */
  async removeParent(): Promise<void> {
    for (const parent of this.parents()) {
      await rmdir(parent).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== "ENOENT") throw err;
      });
    }
  }

  async memoryUsageBytes(id: string): Promise<number> {
    const [dir] = this.dirs(id) as [string];
    const file = join(dir, this.version === 2 ? "memory.current" : "memory.usage_in_bytes");
    return Number(await readFile(file, "utf8").catch(() => "0"));
  }

  /** Peak memory of the group (v1 only keeps it; v2 kernels ≥ 5.19 have memory.peak). */
  async memoryPeakBytes(id: string): Promise<number | undefined> {
    const [dir] = this.dirs(id) as [string];
    const file = join(dir, this.version === 2 ? "memory.peak" : "memory.max_usage_in_bytes");
    const text = await readFile(file, "utf8").catch(() => "");
    return text ? Number(text) : undefined;
  }
}

function checkId(id: string): void {
  if (!ID_RE.test(id)) throw new WrennError("invalid_argument", `"${id}" cannot name a cgroup`);
}

function validateLimits(limits: VmmLimits): void {
  if (!Number.isSafeInteger(limits.memoryBytes) || limits.memoryBytes < 16 * 1024 * 1024) {
    throw new WrennError("invalid_argument", `cgroup memory limit ${limits.memoryBytes} bytes is too small`);
  }
  if (!Number.isInteger(limits.vcpus) || limits.vcpus < 1) {
    throw new WrennError(
      "invalid_argument",
      `cgroup CPU quota needs a whole number of vCPUs ≥ 1, got ${limits.vcpus}`,
    );
  }
}

async function enableControllers(subtreeControl: string): Promise<void> {
  const current = await readFile(subtreeControl, "utf8").catch(() => "");
  const missing = ["memory", "cpu"].filter((c) => !current.split(/\s+/).includes(c));
  if (missing.length > 0) await writeFile(subtreeControl, missing.map((c) => `+${c}`).join(" "));
}
