import { timestampDate } from "@bufbuild/protobuf/wkt";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import type { E2bService } from "./e2b-service.js";
import { E2bMetricSchema } from "./e2b-views.js";
import { MetricsHistory } from "./metrics-history.js";

const TAG = "E2B-compatible";
const SandboxIdParams = z.object({ sandboxID: z.string().min(1).max(128) });

/** Metric series: 720 samples (an hour at the default 5 s), sampling stops 10 min after the last request. */
const METRICS_HISTORY = { maxSamples: 720, idleMs: 600_000, now: Date.now };

/** `GET /sandboxes/{id}/metrics`: the samples inside a range, from a per-sandbox history. */
export function e2bMetricsRoute(services: Services, e2b: E2bService, intervalMs: number): AnyRouteSpec {
  const { sandboxes } = services;
  const metricsHistory = new MetricsHistory({ ...METRICS_HISTORY, intervalMs });
  return defineRoute({
    method: "GET",
    path: "/sandboxes/{sandboxID}/metrics",
    // The first request for a sandbox starts sampling it (see MetricsHistory).
    summary: "CPU, memory and disk samples inside [start, end] (Unix seconds, optional); none while paused",
    tag: TAG,
    auth: "api_key",
    params: SandboxIdParams,
    query: z.object({ start: z.coerce.number().int().optional(), end: z.coerce.number().int().optional() }),
    responses: { 200: { description: "Metrics", schema: z.array(E2bMetricSchema) } },
    handler: async (ctx) => {
      const { principal } = ctx;
      const id = ctx.params.sandboxID;
      const row = await e2b.live(principal, id);
      if (row.state !== "running") return [];
      const sample = async () => {
        const m = await sandboxes.metrics(principal, id);
        const at = m.timestamp ? timestampDate(m.timestamp) : new Date();
        return {
          timestamp: at.toISOString(),
          timestampUnix: Math.floor(at.getTime() / 1000),
          cpuCount: m.cpuCount,
          cpuUsedPct: m.cpuUsedPct,
          memUsed: Number(m.memUsedBytes),
          memTotal: Number(m.memTotalBytes),
          memCache: 0,
          diskUsed: Number(m.diskUsedBytes),
          diskTotal: Number(m.diskTotalBytes),
        };
      };
      return metricsHistory.query(id, sample, ctx.query.start, ctx.query.end);
    },
  });
}
