import { WrennError } from "@wrenn/shared";
import type { ControlPlaneConfig } from "../config.js";
import type { TemplateRow } from "../db/schema.js";
import type { Resources } from "../scheduler/placement.js";

/**
 * What a new sandbox gets: the caller's sizes or the defaults; from a snapshot, its vCPUs
 * and memory (the caller may only repeat them) and its disk if it fixed one.
 */
export function resourcesFor(
  config: ControlPlaneConfig,
  input: { vcpus?: number | undefined; memoryMiB?: number | undefined; diskMiB?: number | undefined },
  snapshot: Pick<TemplateRow, "name" | "vcpus" | "memory_mib" | "disk_mib"> | undefined,
): Resources {
  if (!snapshot) {
    return {
      vcpus: input.vcpus ?? config.defaultVcpus,
      memoryMiB: input.memoryMiB ?? config.defaultMemoryMiB,
      diskMiB: input.diskMiB ?? config.defaultDiskMiB,
    };
  }
  const fixed = {
    vcpus: snapshot.vcpus ?? config.defaultVcpus,
    memoryMiB: snapshot.memory_mib ?? config.defaultMemoryMiB,
  };
  if (input.vcpus !== undefined && input.vcpus !== fixed.vcpus) {
    throw new WrennError(
      "invalid_argument",
      `vcpus: template ${snapshot.name} has ${fixed.vcpus} vCPUs (a template's sizes are fixed when it is made)`,
    );
  }
  if (input.memoryMiB !== undefined && input.memoryMiB !== fixed.memoryMiB) {
    throw new WrennError(
      "invalid_argument",
      `memory_mb: template ${snapshot.name} has ${fixed.memoryMiB} MiB (a template's sizes are fixed when it is made)`,
    );
  }
  return { ...fixed, diskMiB: snapshot.disk_mib ?? input.diskMiB ?? config.defaultDiskMiB };
}
