import type { BuildLogEntryView, BuildStatus, BuildView, TemplateView } from "@wrenn/api";
import { type SnapshotInfo, snapshotInfoFromWire } from "./api-types.js";

/** The SDK's camelCase records for templates and their builds, made from `@wrenn/api`'s wire shapes. */

/** A template: a host image, a snapshot of a sandbox, or one built from steps. */
export interface TemplateInfo extends SnapshotInfo {
  /** A built template: the build new sandboxes start from (its "latest" tag); null before one is ready. */
  buildId: string | null;
  /** A built template: its newest build's status. */
  buildStatus: BuildStatus | null;
  /** A built template's tags, each naming one of its builds. */
  tags: string[];
}

export function templateInfoFromWire(w: TemplateView): TemplateInfo {
  return { ...snapshotInfoFromWire(w), buildId: w.build_id, buildStatus: w.build_status, tags: w.tags };
}

export interface BuildInfo {
  buildId: string;
  templateId: string;
  /** The template's name. */
  template: string;
  status: BuildStatus;
  tags: string[];
  hostId: string | null;
  vcpus: number;
  memoryMiB: number;
  diskMiB: number;
  /** Steps taken from the step cache (not run again), out of `stepsTotal`. */
  stepsCached: number;
  stepsTotal: number;
  /** Why the build failed; `step` is a step number from 1, "start", "ready", … */
  error: { message: string; step: string | null } | null;
  createdAt: Date;
  finishedAt: Date | null;
}

export function buildInfoFromWire(w: BuildView): BuildInfo {
  return {
    buildId: w.id,
    templateId: w.template_id,
    template: w.template,
    status: w.status,
    tags: w.tags,
    hostId: w.host_id,
    vcpus: w.vcpus,
    memoryMiB: w.memory_mb,
    diskMiB: w.disk_mb,
    stepsCached: w.steps_cached,
    stepsTotal: w.steps_total,
    error: w.error,
    createdAt: new Date(w.created_at),
    finishedAt: w.finished_at ? new Date(w.finished_at) : null,
  };
}

export interface BuildLogEntry {
  /** Position in the build's log. */
  offset: number;
  timestamp: Date;
  level: BuildLogEntryView["level"];
  /** "base", a step number from 1, "start", "ready", "snapshot", or "" for the build itself. */
  step: string;
  message: string;
}

export function buildLogEntryFromWire(w: BuildLogEntryView): BuildLogEntry {
  return {
    offset: w.offset,
    timestamp: new Date(w.timestamp),
    level: w.level,
    step: w.step,
    message: w.message,
  };
}

/** One page of a build's log. */
export interface BuildLogPage {
  status: BuildStatus;
  entries: BuildLogEntry[];
  /** Pass as `offset` for what follows. */
  nextOffset: number;
}
