/** Sizes in the scheduler's units. */
export interface Resources {
  vcpus: number;
  memoryMiB: number;
  diskMiB: number;
}

export interface HostLoad {
  hostId: string;
  /** What the host offers (vCPUs already multiplied by its overcommit factor). */
  capacity: Resources;
  /** What is handed out already. */
  allocated: Resources;
}

export interface Placement {
  hostId: string;
  /** The smallest free fraction across resources after placing the request. */
  headroom: number;
}

const KEYS = ["vcpus", "memoryMiB", "diskMiB"] as const;

/** Free fraction of the tightest resource once `request` is added, or null when it does not fit. */
export function headroomAfter(host: HostLoad, request: Resources): number | null {
  let tightest = Number.POSITIVE_INFINITY;
  for (const key of KEYS) {
    const capacity = host.capacity[key];
    if (capacity <= 0) return null;
    const free = capacity - host.allocated[key] - request[key];
    if (free < 0) return null;
    tightest = Math.min(tightest, free / capacity);
  }
  return tightest;
}

/**
 * Least loaded by the tightest resource: among hosts where the request fits, the one
 * whose scarcest resource keeps the largest free fraction. Ties go to the host id
 * order, so placement is deterministic.
 */
export function chooseHost(request: Resources, hosts: readonly HostLoad[]): Placement | null {
  let best: Placement | null = null;
  for (const host of hosts) {
    const headroom = headroomAfter(host, request);
    if (headroom === null) continue;
    if (!best || headroom > best.headroom || (headroom === best.headroom && host.hostId < best.hostId)) {
      best = { hostId: host.hostId, headroom };
    }
  }
  return best;
}

export interface SandboxLoad {
  state: string;
  vcpus: number;
  memoryMiB: number;
  diskMiB: number;
}

/**
 * The database's view of what a host holds. Paused sandboxes keep their disk and count
 * `pausedWeight` of their memory and vCPUs (they may resume at any time); stopped and
 * failed ones count nothing.
 */
export function allocatedByDatabase(sandboxes: readonly SandboxLoad[], pausedWeight: number): Resources {
  const total: Resources = { vcpus: 0, memoryMiB: 0, diskMiB: 0 };
  for (const s of sandboxes) {
    if (s.state === "stopped" || s.state === "error") continue;
    const weight = s.state === "paused" ? pausedWeight : 1;
    total.vcpus += s.vcpus * weight;
    total.memoryMiB += s.memoryMiB * weight;
    total.diskMiB += s.diskMiB;
  }
  return total;
}

/** Combines the agent's own figures with the database's (either may know of work the other does not yet). */
export function combinedAllocation(agent: Resources, database: Resources): Resources {
  return {
    vcpus: Math.max(agent.vcpus, database.vcpus),
    memoryMiB: Math.max(agent.memoryMiB, database.memoryMiB),
    diskMiB: Math.max(agent.diskMiB, database.diskMiB),
  };
}
