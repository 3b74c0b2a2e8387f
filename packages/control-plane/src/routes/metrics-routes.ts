import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  IdParamsSchema,
  listSchema,
  MetricsRangeQuerySchema,
  SandboxMetricsSampleSchema,
  SandboxMetricsSchema,
  TeamMetricsSampleSchema,
  UsageDaySchema,
  UsageQuerySchema,
} from "@wrenn/api";
import type { Services } from "../create-services.js";
import { rangeFromSeconds } from "../e2b/e2b-metrics-route.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";

/** Metrics: a sandbox's series and current sample, the team's totals over time, daily usage. */
export function metricsRoutes(services: Services): AnyRouteSpec[] {
  const { sandboxes, metrics } = services;
  return [
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}/metrics",
      summary: "CPU, memory and disk samples inside [start, end] (Unix seconds), oldest first",
      tag: "Metrics",
      auth: "api_key",
      params: IdParamsSchema,
      query: MetricsRangeQuerySchema,
      responses: { 200: { description: "Samples", schema: listSchema(SandboxMetricsSampleSchema) } },
      handler: async (ctx) => {
        const range = rangeFromSeconds(ctx.query.start, ctx.query.end);
        const samples = await metrics.sandboxSeries(ctx.principal, ctx.params.id, range);
        return {
          items: samples.map((s) => ({
            timestamp: s.ts.toISOString(),
            cpu_count: s.cpuCount,
            cpu_used_pct: s.cpuUsedPct,
            mem_used_bytes: s.memUsed,
            mem_total_bytes: s.memTotal,
            disk_used_bytes: s.diskUsed,
            disk_total_bytes: s.diskTotal,
          })),
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}/metrics/current",
      summary: "CPU, memory and disk use now, asked of the host (with the VMM's resident memory)",
      tag: "Metrics",
      auth: "api_key",
      params: IdParamsSchema,
      responses: { 200: { description: "Metrics", schema: SandboxMetricsSchema } },
      handler: async (ctx) => {
        const m = await sandboxes.metrics(ctx.principal, ctx.params.id);
        return {
          cpu_count: m.cpuCount,
          cpu_used_pct: m.cpuUsedPct,
          mem_total_bytes: Number(m.memTotalBytes),
          mem_used_bytes: Number(m.memUsedBytes),
          disk_total_bytes: Number(m.diskTotalBytes),
          disk_used_bytes: Number(m.diskUsedBytes),
          vmm_rss_bytes: Number(m.vmmRssBytes),
          timestamp: m.timestamp ? timestampDate(m.timestamp).toISOString() : null,
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/team/metrics",
      summary:
        "The caller's team inside [start, end] (Unix seconds): running sandboxes, their vCPUs and memory",
      tag: "Metrics",
      auth: "api_key",
      query: MetricsRangeQuerySchema,
      responses: { 200: { description: "Samples", schema: listSchema(TeamMetricsSampleSchema) } },
      handler: async (ctx) => {
        const rows = await metrics.teamSeries(
          ctx.principal,
          rangeFromSeconds(ctx.query.start, ctx.query.end),
        );
        return {
          items: rows.map((r) => ({
            timestamp: r.ts.toISOString(),
            running_sandboxes: r.runningSandboxes,
            vcpus: r.vcpus,
            memory_mib: r.memoryMiB,
            sandbox_start_rate: r.sandboxStartRate,
          })),
        };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/usage",
      summary:
        "The caller's team usage per UTC day (today included): CPU-minutes, memory GiB-hours, sandbox-hours",
      tag: "Metrics",
      auth: "api_key",
      query: UsageQuerySchema,
      responses: { 200: { description: "Days, oldest first", schema: listSchema(UsageDaySchema) } },
      handler: async (ctx) => {
        const days = await metrics.usage(ctx.principal, ctx.query.days);
        return {
          items: days.map((d) => ({
            date: d.date,
            cpu_minutes: d.cpuMinutes,
            memory_gib_hours: d.memoryGibHours,
            sandbox_hours: d.sandboxHours,
          })),
        };
      },
    }),
  ];
}
