import type { Logger } from "@wrenn/shared";
import type { CgroupManager } from "./cgroup-manager.js";

export async function createCgroupManager(_logger: Logger): Promise<CgroupManager> {
  return { description: "cgroups not managed", place: async () => {} };
}
