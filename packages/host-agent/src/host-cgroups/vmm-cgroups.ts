import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, rmdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@wrenn/shared";

export interface VmmLimits {
  memoryBytes: number;
  vcpus: number;
}

const CPU_PERIOD_US = 100_000;

/**
 * A cgroup per sandbox for its VMM process, so one sandbox cannot starve the host:
 * a memory limit and a CPU quota of `vcpus` cores. Uses cgroup v2 when the unified
 * hierarchy is mounted, else the v1 memory and cpu controllers.
 */
export class VmmCgroups {
  private constructor(
    private readonly version: 1 | 2,
    private readonly root: string,
    /** v1 mount points of the memory and cpu controllers (they may be co-mounted or not). */
    private readonly v1: { memory: string; cpu: string },
    private readonly logger: Logger,
  ) {}

  static async detect(logger: Logger, root = "/sys/fs/cgroup"): Promise<VmmCgroups> {
    if (existsSync(join(root, "cgroup.controllers"))) {
      return new VmmCgroups(2, root, { memory: root, cpu: root }, logger);
    }
    const mounts = await readFile("/proc/self/mounts", "utf8").catch(() => "");
    const mountOf = (controller: string) => {
      for (const line of mounts.split("\n")) {
        const [, dir, type, opts] = line.split(" ");
        if (type === "cgroup" && dir && opts?.split(",").includes(controller)) return dir;
      }
      return join(root, controller);
    };
    return new VmmCgroups(1, root, { memory: mountOf("memory"), cpu: mountOf("cpu") }, logger);
  }

  get description(): string {
    return this.version === 2
      ? "cgroup v2 (memory.max, cpu.max)"
      : `cgroup v1 (memory at ${this.v1.memory}, cpu at ${this.v1.cpu})`;
  }

  private dirs(id: string): string[] {
    if (this.version === 2) return [join(this.root, "wrenn", id)];
    return [join(this.v1.memory, "wrenn", id), join(this.v1.cpu, "wrenn", id)];
  }

  /** Creates the sandbox's group with its limits and moves the VMM into it. */
  async place(id: string, pid: number, limits: VmmLimits): Promise<void> {
    const quota = String(limits.vcpus * CPU_PERIOD_US);
    if (this.version === 2) {
      const parent = join(this.root, "wrenn");
      await mkdir(parent, { recursive: true });
      await writeFile(join(this.root, "cgroup.subtree_control"), "+memory +cpu").catch(() => {});
      await writeFile(join(parent, "cgroup.subtree_control"), "+memory +cpu").catch(() => {});
      const dir = join(parent, id);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, "memory.max"), String(limits.memoryBytes));
      await writeFile(join(dir, "cpu.max"), `${quota} ${CPU_PERIOD_US}`);
      await writeFile(join(dir, "cgroup.procs"), String(pid));
      return;
    }
    const [memDir, cpuDir] = this.dirs(id) as [string, string];
    await mkdir(memDir, { recursive: true });
    await writeFile(join(memDir, "memory.limit_in_bytes"), String(limits.memoryBytes));
    await writeFile(join(memDir, "cgroup.procs"), String(pid));
    await mkdir(cpuDir, { recursive: true });
    await writeFile(join(cpuDir, "cpu.cfs_period_us"), String(CPU_PERIOD_US));
    await writeFile(join(cpuDir, "cpu.cfs_quota_us"), quota);
    await writeFile(join(cpuDir, "cgroup.procs"), String(pid));
  }

  /** Removes the sandbox's group; call after its VMM has exited. Idempotent. */
  async remove(id: string): Promise<void> {
    for (const dir of this.dirs(id)) {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          await rmdir(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === "ENOENT") break;
          // EBUSY while the exiting VMM is still being reaped.
          if (code !== "EBUSY" || attempt === 49) {
            this.logger.warn("cannot remove VMM cgroup", { dir, code });
            break;
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }
  }

  /** Ids of sandbox groups present on the host (for a sweep after a crash). */
  async list(): Promise<string[]> {
    const parent = this.version === 2 ? join(this.root, "wrenn") : join(this.v1.memory, "wrenn");
    const names = await readdir(parent, { withFileTypes: true }).catch(() => []);
    return names.filter((d) => d.isDirectory()).map((d) => d.name);
  }

  async memoryUsageBytes(id: string): Promise<number> {
    const file =
      this.version === 2
        ? join(this.root, "wrenn", id, "memory.current")
        : join(this.v1.memory, "wrenn", id, "memory.usage_in_bytes");
    return Number(await readFile(file, "utf8").catch(() => "0"));
  }
}
