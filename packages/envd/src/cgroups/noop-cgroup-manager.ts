import type { CgroupManager } from "./cgroup-manager.js";

/** Leaves every process in envd's own cgroup; `reason` says why, for the start-up log. */
export function createNoopCgroupManager(reason: string): CgroupManager {
  return { description: `cgroups not managed: ${reason}`, place: async () => {} };
}
