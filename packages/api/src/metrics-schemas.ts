import { z } from "zod";
import { TimestampSchema } from "./fields.js";

/** A time range in Unix seconds (as E2B's metrics routes take it); either end may be left open. */
export const MetricsRangeQuerySchema = z.object({
  start: z.coerce.number().int().min(0).optional().describe("Unix seconds; default: since the beginning"),
  end: z.coerce.number().int().min(0).optional().describe("Unix seconds, inclusive; default: now"),
});
export type MetricsRangeQuery = z.infer<typeof MetricsRangeQuerySchema>;

/** One stored sample of a sandbox (the control plane's metrics sampler writes them). */
export const SandboxMetricsSampleSchema = z.object({
  timestamp: TimestampSchema,
  cpu_count: z.number().int(),
  cpu_used_pct: z.number().describe("percent of all the sandbox's vCPUs"),
  mem_used_bytes: z.number(),
  mem_total_bytes: z.number(),
  disk_used_bytes: z.number(),
  disk_total_bytes: z.number(),
});
export type SandboxMetricsSampleView = z.infer<typeof SandboxMetricsSampleSchema>;

/** A team's totals at one sampler tick. */
export const TeamMetricsSampleSchema = z.object({
  timestamp: TimestampSchema,
  running_sandboxes: z.number().int(),
  vcpus: z.number().int().describe("vCPUs of the running sandboxes"),
  memory_mib: z.number().int().describe("memory of the running sandboxes"),
  sandbox_start_rate: z.number().describe("sandboxes created per second since the previous sample"),
});
export type TeamMetricsSampleView = z.infer<typeof TeamMetricsSampleSchema>;

export const UsageQuerySchema = z.object({
  days: z.coerce.number().int().min(1).max(366).default(7).describe("UTC days, today included"),
});
export type UsageQuery = z.input<typeof UsageQuerySchema>;

/** One UTC day of a team's usage, from the sampled metrics. */
export const UsageDaySchema = z.object({
  date: z.string().describe("YYYY-MM-DD (UTC)"),
  cpu_minutes: z.number().describe("sum over samples of vCPUs × CPU use × the time each sample stands for"),
  memory_gib_hours: z.number().describe("memory the sandboxes were given (as their guests see it) over time"),
  sandbox_hours: z.number().describe("time sandboxes were running"),
});
export type UsageDayView = z.infer<typeof UsageDaySchema>;
