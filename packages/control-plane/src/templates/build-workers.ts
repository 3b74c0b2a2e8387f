import type { Worker } from "../workers/worker-runner.js";
import type { TemplateBuilds } from "./template-builds.js";

/**
 * The template-build workers: one replica fails the builds of dead replicas; every replica
 * takes waiting builds (up to the global limit), so none waits on the replica that accepted it.
 */
export function createBuildWorkers(builds: TemplateBuilds, intervalMs: number): Worker[] {
  return [
    { name: "build-recovery", intervalMs, tick: async () => void (await builds.recoverOrphans()) },
    { name: "build-claimer", mode: "every-replica", intervalMs, tick: () => builds.claimWaiting() },
  ];
}
