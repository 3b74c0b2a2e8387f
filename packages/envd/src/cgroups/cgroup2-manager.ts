import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@wrenn/shared";
import { type CgroupClassSpec, cgroupClassSpecs, DELEGATED_CONTROLLERS } from "./cgroup-classes.js";
import { appendCgroupFile, errnoOf, writeCgroupFile } from "./cgroup-files.js";
import type { CgroupManager, ProcessClass } from "./cgroup-manager.js";

export interface Cgroup2ManagerOptions {
  /** envd's own cgroup directory (under a cgroup2 mount); the groups are created below it. */
  root: string;
  memTotalBytes: number;
  logger: Logger;
}

/** Errors that mean "this controller's file is not here", which E2B's envd also skips. */
const UNAVAILABLE = new Set(["ENOENT", "EACCES", "EPERM", "EOPNOTSUPP", "EINVAL"]);

async function readWords(path: string): Promise<string[]> {
  const text = await readFile(path, "utf8");
  return text.split(/\s+/).filter((w) => w !== "");
}

/**
 * Enables the delegated controllers in the root's subtree_control, one per write so one
 * the kernel refuses does not take the others with it. Returns those that are enabled.
 */
async function enableControllers(root: string, logger: Logger): Promise<string[]> {
  const available = new Set(await readWords(join(root, "cgroup.controllers")));
  const enabled = new Set(await readWords(join(root, "cgroup.subtree_control")).catch(() => []));
  for (const controller of DELEGATED_CONTROLLERS) {
    if (!available.has(controller) || enabled.has(controller)) continue;
    try {
      await appendCgroupFile(join(root, "cgroup.subtree_control"), `+${controller}`);
      enabled.add(controller);
    } catch (err) {
      // EBUSY: the root holds processes and is not the hierarchy's root (no internal processes).
      logger.warn("cannot enable cgroup controller", { root, controller, err: errnoOf(err) ?? err });
    }
  }
  return DELEGATED_CONTROLLERS.filter((c) => enabled.has(c));
}

async function createGroup(path: string, spec: CgroupClassSpec, logger: Logger): Promise<void> {
  await mkdir(path, { recursive: true });
  for (const [name, value] of Object.entries(spec.properties)) {
    try {
      await writeCgroupFile(join(path, name), value);
    } catch (err) {
      // A property of a controller not enabled above has no file; the group still works.
      if (!UNAVAILABLE.has(errnoOf(err) ?? "")) throw err;
      logger.debug("cgroup property unavailable", { path, name, err: errnoOf(err) });
    }
  }
}

/**
 * Creates ptys/, socats/ and user/ under `root` with E2B's weights and limits. Throws when
 * a group cannot be created; the caller falls back to the no-op manager.
 */
export async function createCgroup2Manager(options: Cgroup2ManagerOptions): Promise<CgroupManager> {
  const { root, logger } = options;
  const controllers = await enableControllers(root, logger);
  const specs = cgroupClassSpecs(options.memTotalBytes);
  const paths = {} as Record<ProcessClass, string>;
  for (const cls of Object.keys(specs) as ProcessClass[]) {
    const path = join(root, specs[cls].dir);
    await createGroup(path, specs[cls], logger);
    paths[cls] = path;
  }
  const dirs = Object.values(specs).map((s) => s.dir);
  return {
    description: `cgroup v2 at ${root}: ${dirs.join(", ")} (controllers: ${controllers.join(", ") || "none"})`,
    async place(pid, cls) {
      // Node cannot spawn straight into a cgroup (E2B uses CLONE_INTO_CGROUP), so a process
      // runs in envd's group for the moment between spawn and this write.
      try {
        await appendCgroupFile(join(paths[cls], "cgroup.procs"), String(pid));
      } catch (err) {
        // ESRCH: the process already exited; there is nothing to place.
        if (errnoOf(err) !== "ESRCH") throw err;
      }
    },
  };
}
