import { WrennError } from "@wrenn/shared";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";
import type { TimeRange } from "../services/metrics-service.js";
import { E2bMaxTeamMetricSchema, E2bMetricSchema, E2bTeamMetricSchema } from "./e2b-views.js";

const TAG = "E2B-compatible";
const SandboxIdParams = z.object({ sandboxID: z.string().min(1).max(128) });
const TeamIdParams = z.object({ teamID: z.string().min(1).max(128) });
/** Unix seconds, as the SDK sends them. */
const RangeQuery = z.object({
  start: z.coerce.number().int().min(0).optional(),
  end: z.coerce.number().int().min(0).optional(),
});

/** A range in seconds as milliseconds; `end` covers its whole second (timestamps are floored). */
export function rangeFromSeconds(start?: number, end?: number): TimeRange {
  if (start !== undefined && end !== undefined && end < start) {
    throw new WrennError("invalid_argument", "end is before start");
  }
  return {
    startMs: start === undefined ? undefined : start * 1000,
    endMs: end === undefined ? undefined : end * 1000 + 999,
  };
}

function unix(ts: Date) {
  return { timestamp: ts.toISOString(), timestampUnix: Math.floor(ts.getTime() / 1000) };
}

/** Team routes answer only the caller's own team, as E2B's do. */
function ownTeam(teamId: string, callerTeamId: string): void {
  if (teamId !== callerTeamId) throw new WrennError("permission_denied", `no access to team ${teamId}`);
}

/** `GET /sandboxes/{id}/metrics` and the team metrics routes, from the metrics history. */
export function e2bMetricsRoutes(services: Services): AnyRouteSpec[] {
  const { metrics } = services;
  return [
    defineRoute({
      method: "GET",
      path: "/sandboxes/{sandboxID}/metrics",
      summary:
        "CPU, memory and disk samples inside [start, end] (Unix seconds, optional; no start: since it began)",
      tag: TAG,
      auth: "api_key",
      params: SandboxIdParams,
      query: RangeQuery,
      responses: { 200: { description: "Metrics", schema: z.array(E2bMetricSchema) } },
      handler: async (ctx) => {
        const range = rangeFromSeconds(ctx.query.start, ctx.query.end);
        const samples = await metrics.sandboxSeries(ctx.principal, ctx.params.sandboxID, range);
        return samples.map((s) => ({
          ...unix(s.ts),
          cpuCount: s.cpuCount,
          cpuUsedPct: s.cpuUsedPct,
          memUsed: s.memUsed,
          memTotal: s.memTotal,
          memCache: 0,
          diskUsed: s.diskUsed,
          diskTotal: s.diskTotal,
        }));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/teams/{teamID}/metrics",
      summary: "The caller's team: concurrent sandboxes and start rate at each sample inside [start, end]",
      tag: TAG,
      auth: "api_key",
      params: TeamIdParams,
      query: RangeQuery,
      responses: { 200: { description: "Team metrics", schema: z.array(E2bTeamMetricSchema) } },
      handler: async (ctx) => {
        ownTeam(ctx.params.teamID, ctx.principal.teamId);
        const rows = await metrics.teamSeries(
          ctx.principal,
          rangeFromSeconds(ctx.query.start, ctx.query.end),
        );
        return rows.map((r) => ({
          ...unix(r.ts),
          concurrentSandboxes: r.runningSandboxes,
          sandboxStartRate: r.sandboxStartRate,
        }));
      },
    }),
    defineRoute({
      method: "GET",
      path: "/teams/{teamID}/metrics/max",
      summary:
        "The caller's team: the largest value of one metric inside [start, end] (0 when nothing was sampled)",
      tag: TAG,
      auth: "api_key",
      params: TeamIdParams,
      query: RangeQuery.extend({ metric: z.enum(["concurrent_sandboxes", "sandbox_start_rate"]) }),
      responses: { 200: { description: "Maximum", schema: E2bMaxTeamMetricSchema } },
      handler: async (ctx) => {
        ownTeam(ctx.params.teamID, ctx.principal.teamId);
        const range = rangeFromSeconds(ctx.query.start, ctx.query.end);
        const max = await metrics.teamMax(ctx.principal, ctx.query.metric, range);
        if (max) return { ...unix(max.ts), value: max.value };
        return { ...unix(new Date(range.endMs ?? Date.now())), value: 0 };
      },
    }),
  ];
}
