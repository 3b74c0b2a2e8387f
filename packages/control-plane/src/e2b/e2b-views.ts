import { z } from "zod";
import type { SandboxRow, SandboxStateName, TemplateRow } from "../db/schema.js";
import { E2bNetworkViewSchema, e2bNetworkView } from "./e2b-network.js";

/**
 * Response shapes of the e2b-compatible API (field names and types are that API's
 * contract, as the stock `e2b` SDK reads them) and the functions that make them.
 */

/** The envd protocol version our envd speaks, as the SDK gates features on it. */
export const E2B_ENVD_VERSION = "0.6.4";

/** `running` and `paused` are the only states that API knows; the rest are not found. */
export type E2bState = "running" | "paused";

export function e2bState(state: SandboxStateName): E2bState | null {
  switch (state) {
    case "pending":
    case "running":
    case "missing":
      return "running";
    case "paused":
      return "paused";
    default:
      return null;
  }
}

/** What each e2b state filter selects among our states. */
export const STATES_FOR: Record<E2bState, SandboxStateName[]> = {
  running: ["pending", "running", "missing"],
  paused: ["paused"],
};

export interface ViewContext {
  /** Sandbox traffic domain, or null (the SDK then uses its own E2B_DOMAIN). */
  domain: string | null;
  /** The template id each sandbox is reported with (a snapshot's name for sandboxes made from one). */
  templateId(row: SandboxRow): string;
}

export const E2bSandboxSchema = z.object({
  sandboxID: z.string(),
  templateID: z.string(),
  clientID: z.string(),
  envdVersion: z.string(),
  envdAccessToken: z.string(),
  trafficAccessToken: z.string().nullable(),
  domain: z.string().nullable(),
});

export function e2bSandboxView(row: SandboxRow, ctx: ViewContext): z.infer<typeof E2bSandboxSchema> {
  return {
    sandboxID: row.id,
    templateID: ctx.templateId(row),
    clientID: row.host_id ?? "",
    envdVersion: E2B_ENVD_VERSION,
    envdAccessToken: row.envd_access_token,
    trafficAccessToken: row.traffic_access_token,
    domain: ctx.domain,
  };
}

export const E2bListedSandboxSchema = z.object({
  sandboxID: z.string(),
  templateID: z.string(),
  clientID: z.string(),
  state: z.enum(["running", "paused"]),
  cpuCount: z.number().int(),
  memoryMB: z.number().int(),
  diskSizeMB: z.number().int(),
  envdVersion: z.string(),
  metadata: z.record(z.string(), z.string()),
  startedAt: z.string(),
  endAt: z.string(),
});

/** When the sandbox's timeout ends, as getInfo reports it. */
export function endAt(row: SandboxRow): Date {
  return row.expires_at ?? new Date(row.updated_at.getTime() + row.timeout_sec * 1000);
}

export function e2bListedView(row: SandboxRow, ctx: ViewContext): z.infer<typeof E2bListedSandboxSchema> {
  return {
    sandboxID: row.id,
    templateID: ctx.templateId(row),
    clientID: row.host_id ?? "",
    state: e2bState(row.state) ?? "running",
    cpuCount: row.vcpus,
    memoryMB: row.memory_mib,
    diskSizeMB: row.disk_mib,
    envdVersion: E2B_ENVD_VERSION,
    metadata: row.metadata,
    startedAt: row.created_at.toISOString(),
    endAt: endAt(row).toISOString(),
  };
}

export const E2bSandboxDetailSchema = E2bListedSandboxSchema.extend({
  envdAccessToken: z.string(),
  domain: z.string().nullable(),
  lifecycle: z.object({ onTimeout: z.enum(["kill", "pause"]), autoResume: z.boolean() }),
  allowInternetAccess: z.boolean(),
  network: E2bNetworkViewSchema,
});

export function e2bDetailView(row: SandboxRow, ctx: ViewContext): z.infer<typeof E2bSandboxDetailSchema> {
  return {
    ...e2bListedView(row, ctx),
    envdAccessToken: row.envd_access_token,
    domain: ctx.domain,
    lifecycle: { onTimeout: row.on_timeout === "pause" ? "pause" : "kill", autoResume: row.auto_resume },
    ...e2bNetworkView(row),
  };
}

export const E2bMetricSchema = z.object({
  timestamp: z.string(),
  timestampUnix: z.number().int(),
  cpuCount: z.number().int(),
  cpuUsedPct: z.number(),
  memUsed: z.number(),
  memTotal: z.number(),
  memCache: z.number(),
  diskUsed: z.number(),
  diskTotal: z.number(),
});

export const E2bTeamMetricSchema = z.object({
  timestamp: z.string(),
  timestampUnix: z.number().int(),
  concurrentSandboxes: z.number().int(),
  sandboxStartRate: z.number(),
});

export const E2bMaxTeamMetricSchema = z.object({
  timestamp: z.string(),
  timestampUnix: z.number().int(),
  value: z.number(),
});

export const E2bSnapshotInfoSchema = z.object({
  snapshotID: z.string(),
  names: z.array(z.string()),
});

/** A snapshot is addressed by its (team-unique) name, which doubles as the template id. */
export function e2bSnapshotView(row: TemplateRow): z.infer<typeof E2bSnapshotInfoSchema> {
  return { snapshotID: row.name, names: [row.name] };
}

/** One requested fork: the sandbox, or why it did not start. */
export const E2bForkResultSchema = z.union([
  z.object({ sandbox: E2bSandboxSchema }),
  z.object({ error: z.object({ code: z.number().int(), message: z.string() }) }),
]);
