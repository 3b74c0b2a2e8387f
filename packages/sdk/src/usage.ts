import type { TeamMetricsSampleView, UsageDayView } from "@wrenn/api";
import { ApiClient } from "./api-client.js";
import { type ClientOptions, type TimeRangeOptions, unixSeconds } from "./sandbox.js";

/** One UTC day of the team's usage. */
export interface UsageDay {
  /** YYYY-MM-DD (UTC). */
  date: string;
  cpuMinutes: number;
  memoryGibHours: number;
  sandboxHours: number;
}

/** The team's totals at one sample. */
export interface TeamMetricsSample {
  timestamp: Date;
  runningSandboxes: number;
  vcpus: number;
  memoryMiB: number;
  /** Sandboxes created per second since the previous sample. */
  sandboxStartRate: number;
}

/** The caller's team usage over the last `days` UTC days (default 7), today included, oldest first. */
async function getUsage(options: ClientOptions & { days?: number } = {}): Promise<UsageDay[]> {
  const api = options.client ?? (await ApiClient.create(options));
  const res = await api.json<{ items: UsageDayView[] }>("GET", "/v1/usage", {
    query: { days: options.days },
  });
  return res.items.map((d) => ({
    date: d.date,
    cpuMinutes: d.cpu_minutes,
    memoryGibHours: d.memory_gib_hours,
    sandboxHours: d.sandbox_hours,
  }));
}

/** The caller's team totals inside a range (default: all that is kept), oldest first. */
async function getTeamMetrics(options: ClientOptions & TimeRangeOptions = {}): Promise<TeamMetricsSample[]> {
  const api = options.client ?? (await ApiClient.create(options));
  const res = await api.json<{ items: TeamMetricsSampleView[] }>("GET", "/v1/team/metrics", {
    query: { start: unixSeconds(options.start), end: unixSeconds(options.end) },
  });
  return res.items.map((r) => ({
    timestamp: new Date(r.timestamp),
    runningSandboxes: r.running_sandboxes,
    vcpus: r.vcpus,
    memoryMiB: r.memory_mib,
    sandboxStartRate: r.sandbox_start_rate,
  }));
}

/** The team's usage per day and its totals over time, from the control plane's metrics history. */
export const Usage = { days: getUsage, teamMetrics: getTeamMetrics } as const;
