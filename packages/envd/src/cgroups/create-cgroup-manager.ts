import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { totalmem } from "node:os";
import { join, resolve } from "node:path";
import type { Logger } from "@wrenn/shared";
import type { CgroupManager } from "./cgroup-manager.js";
import { createCgroup2Manager } from "./cgroup2-manager.js";
import { createNoopCgroupManager } from "./noop-cgroup-manager.js";

export interface CgroupManagerOptions {
  /** Where cgroup2 is mounted. Default /sys/fs/cgroup (wrenn-init mounts it there in the guest). */
  mountPath?: string;
  /** envd's cgroup relative to the mount, e.g. "/" for the root. Default from /proc/self/cgroup. */
  ownCgroup?: string;
  /** Memory the limits are derived from. Default the machine's total memory. */
  memTotalBytes?: number;
}

/** The unified-hierarchy entry ("0::/path") of /proc/self/cgroup. */
export function parseOwnCgroup(procSelfCgroup: string): string | undefined {
  for (const line of procSelfCgroup.split("\n")) {
    if (line.startsWith("0::")) return line.slice(3).trim() || "/";
  }
  return undefined;
}

/** True where `mountPath` is a cgroup2 hierarchy: only cgroup2 has cgroup.controllers at its root. */
export function isCgroup2Mount(mountPath: string): boolean {
  return existsSync(join(mountPath, "cgroup.controllers"));
}

/**
 * The cgroup v2 manager where cgroup2 is mounted, else a no-op manager whose description
 * says why (create-envd logs it once at start). Setup errors also fall back to no-op:
 * cgroups tune envd's guest, they are not needed for it to serve.
 */
export async function createCgroupManager(
  logger: Logger,
  options: CgroupManagerOptions = {},
): Promise<CgroupManager> {
  const mountPath = options.mountPath ?? "/sys/fs/cgroup";
  if (!isCgroup2Mount(mountPath)) {
    // A v1 or hybrid host; its cgroup2 at <mount>/unified (if any) carries no controllers worth having.
    return createNoopCgroupManager(`no cgroup v2 hierarchy at ${mountPath} (cgroup v1 or hybrid host)`);
  }
  let own = options.ownCgroup;
  if (own === undefined) {
    own = parseOwnCgroup(await readFile("/proc/self/cgroup", "utf8").catch(() => "")) ?? "/";
  }
  // resolve(), not join(): the root cgroup "/" must not leave a trailing slash in paths and logs.
  const root = resolve(mountPath, `.${own}`);
  try {
    return await createCgroup2Manager({ root, memTotalBytes: options.memTotalBytes ?? totalmem(), logger });
  } catch (err) {
    return createNoopCgroupManager(
      `cgroup v2 setup failed at ${root}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
