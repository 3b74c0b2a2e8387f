import type { ProcessClass } from "./cgroup-manager.js";

export interface CgroupClassSpec {
  /** Directory under envd's cgroup. */
  dir: string;
  /** Interface files written when the group is created. */
  properties: Record<string, string>;
}

const MiB = 1024 * 1024;

/** Controllers envd delegates to its groups, where the kernel offers them. */
export const DELEGATED_CONTROLLERS = ["cpu", "memory", "io", "pids"] as const;

/**
 * The groups and their settings, as E2B's envd sets them: terminals get the largest CPU
 * share, socat a small guaranteed memory floor so forwarding survives pressure, and user
 * code the smallest share. Terminals and user code are throttled (memory.high) and then
 * OOM-killed (memory.max) just below the VM's memory, keeping 1/8 of it (at most 128 MiB)
 * for envd and the kernel, so a runaway program kills itself rather than the sandbox.
 */
export function cgroupClassSpecs(memTotalBytes: number): Record<ProcessClass, CgroupClassSpec> {
  const reserved = Math.min(Math.floor(memTotalBytes / 8), 128 * MiB);
  const memoryMax = String(Math.max(0, Math.floor(memTotalBytes) - reserved));
  return {
    pty: {
      dir: "ptys",
      properties: {
        "cpu.weight": "200",
        "io.weight": "default 50",
        "memory.high": memoryMax,
        "memory.max": memoryMax,
      },
    },
    socat: {
      dir: "socats",
      properties: {
        "cpu.weight": "150",
        "io.weight": "default 50",
        "memory.min": String(5 * MiB),
        "memory.low": String(8 * MiB),
      },
    },
    user: {
      dir: "user",
      properties: {
        "cpu.weight": "50",
        "io.weight": "default 10",
        "memory.high": memoryMax,
        "memory.max": memoryMax,
      },
    },
  };
}
