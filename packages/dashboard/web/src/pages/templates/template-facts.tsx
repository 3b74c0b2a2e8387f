/** How a template's facts read, shared by the templates list, its detail and the snapshots page. */
import type { TemplateView } from "@wrenn/api";
import { formatBytes } from "../../format.js";

const MiB = 1024 * 1024;

/** "2 vCPU · 512 MiB · 4.0 GiB disk", or "default" when the template sets none. */
export function templateResources(t: Pick<TemplateView, "vcpus" | "memory_mb" | "disk_mb">): string {
  const parts = [
    t.vcpus !== null ? `${t.vcpus} vCPU` : null,
    t.memory_mb !== null ? formatBytes(t.memory_mb * MiB) : null,
    t.disk_mb !== null ? `${formatBytes(t.disk_mb * MiB)} disk` : null,
  ].filter((p) => p !== null);
  return parts.length ? parts.join(" · ") : "default";
}
