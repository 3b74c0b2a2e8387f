import type { BuildView } from "@wrenn/api";
import type { TemplateBuildRow } from "../db/schema.js";

/** A build as /v1 shows it; `template` is the template's name. */
export function buildView(row: TemplateBuildRow, template: string): BuildView {
  const steps = (row.spec as { steps?: unknown[] } | null)?.steps ?? [];
  return {
    id: row.id,
    template_id: row.template_id,
    template,
    status: row.status,
    tags: row.tags,
    host_id: row.host_id,
    vcpus: row.vcpus,
    memory_mb: row.memory_mib,
    disk_mb: row.disk_mib,
    steps_cached: row.steps_cached,
    steps_total: steps.length,
    error: row.error_message ? { message: row.error_message, step: row.error_step } : null,
    created_at: new Date(row.created_at).toISOString(),
    finished_at: row.finished_at ? new Date(row.finished_at).toISOString() : null,
  };
}
