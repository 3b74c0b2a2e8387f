/**
 * CPU and memory use of processes and of the host, read from /proc (Linux only): what the
 * density suite reports per VM.
 */
import { readFileSync } from "node:fs";

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** utime + stime of a process in seconds; undefined once it is gone. */
export function processCpuSeconds(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: fields count from the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of the whole line, so 11 and 12 after the name.
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/** A process's proportional set size in MiB (its private pages plus its share of shared ones). */
export function processPssMiB(pid: number): number | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
  } catch {
    return undefined;
  }
  const kib = /^Pss:\s+(\d+) kB/m.exec(text)?.[1];
  return kib === undefined ? undefined : Number(kib) / 1024;
}

/** Busy and total CPU time of the whole host in seconds (all cores), from /proc/stat. */
export function hostCpuSeconds(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
  const [, ...ticks] = line.trim().split(/\s+/).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already inside user).
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = ticks;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / USER_HZ, total: (busy + idle + iowait) / USER_HZ };
}

/** Memory in use on the host in MiB: MemTotal − MemAvailable. */
export function hostMemoryUsedMiB(): number {
  const text = readFileSync("/proc/meminfo", "utf8");
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? 0);
  return (kib("MemTotal") - kib("MemAvailable")) / 1024;
}

/** Per-process CPU over a window: % of one core for each pid still alive at both ends. */
export async function cpuPercentOver(
  pids: readonly number[],
  windowMs: number,
): Promise<Map<number, number>> {
  const before = new Map(pids.map((pid) => [pid, processCpuSeconds(pid)]));
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowMs));
  const seconds = (performance.now() - t0) / 1000;
  const out = new Map<number, number>();
  for (const pid of pids) {
    const a = before.get(pid);
    const b = processCpuSeconds(pid);
    if (a !== undefined && b !== undefined) out.set(pid, ((b - a) / seconds) * 100);
  }
  return out;
}
