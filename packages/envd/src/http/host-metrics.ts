import { readFile, statfs } from "node:fs/promises";
import { availableParallelism } from "node:os";

/** Resource usage in E2B's `Metrics` shape (field names are the wire contract). */
export interface HostMetrics {
  ts: number;
  cpu_count: number;
  cpu_used_pct: number;
  mem_total_mib: number;
  mem_used_mib: number;
  mem_total: number;
  mem_used: number;
  mem_cache: number;
  disk_used: number;
  disk_total: number;
}

interface CpuSample {
  busy: number;
  total: number;
}

async function readCpuSample(): Promise<CpuSample> {
  const text = await readFile("/proc/stat", "utf8");
  const line = text.split("\n").find((l) => l.startsWith("cpu "));
  // user nice system idle iowait irq softirq steal (guest time is already in user/nice).
  const fields = (line ?? "").trim().split(/\s+/).slice(1, 9).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

async function readMeminfo(): Promise<Map<string, number>> {
  const map = new Map<string, number>();
  for (const line of (await readFile("/proc/meminfo", "utf8")).split("\n")) {
    const match = /^(\w+(?:\(\w+\))?):\s+(\d+)(?:\s+kB)?/.exec(line);
    if (match?.[1] && match[2]) map.set(match[1], Number(match[2]) * 1024);
  }
  return map;
}

/**
 * Samples CPU, memory and root-disk usage. CPU percent is over the time since the
 * previous call (since boot on the first), as gopsutil's cpu.Percent(0) does for E2B.
 */
export function createHostMetrics(): () => Promise<HostMetrics> {
  let previous: CpuSample = { busy: 0, total: 0 };
  return async () => {
    const cpu = await readCpuSample();
    const dTotal = cpu.total - previous.total;
    const cpuPct = dTotal > 0 ? Math.round(((cpu.busy - previous.busy) / dTotal) * 10_000) / 100 : 0;
    previous = cpu;
    const mem = await readMeminfo();
    const memTotal = mem.get("MemTotal") ?? 0;
    const available = mem.get("MemAvailable") ?? mem.get("MemFree") ?? 0;
    const memUsed = Math.max(0, memTotal - available);
    const disk = await statfs("/");
    const diskTotal = disk.blocks * disk.bsize;
    return {
      ts: Math.floor(Date.now() / 1000),
      cpu_count: availableParallelism(),
      cpu_used_pct: cpuPct,
      mem_total_mib: Math.floor(memTotal / 1024 / 1024),
      mem_used_mib: Math.floor(memUsed / 1024 / 1024),
      mem_total: memTotal,
      mem_used: memUsed,
      mem_cache: (mem.get("Cached") ?? 0) + (mem.get("SReclaimable") ?? 0),
      disk_used: diskTotal - disk.bavail * disk.bsize,
      disk_total: diskTotal,
    };
  };
}
