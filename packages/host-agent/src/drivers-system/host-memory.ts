import { readFileSync } from "node:fs";

/** How much memory the host can still give out now (the kernel's own estimate). */
export interface HostMemoryProbe {
  /** MemAvailable in MiB. */
  availableMiB(): number;
}

/**
 * Reads MemAvailable from /proc/meminfo on each call (a few µs; asked once per start).
 * An unreadable file or a missing field reads as unlimited: admission then rests on the
 * configured capacity alone.
 */
export function procMeminfoProbe(path = "/proc/meminfo"): HostMemoryProbe {
  return {
    availableMiB() {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch {
        return Number.POSITIVE_INFINITY;
      }
      const kib = /^MemAvailable:\s+(\d+) kB/m.exec(text)?.[1];
      return kib === undefined ? Number.POSITIVE_INFINITY : Number(kib) / 1024;
    },
  };
}
