import { WrennError } from "@wrenn/shared";
import type { SandboxRecord, SandboxResources } from "./sandbox-record.js";

export interface SandboxLimits {
  minVcpus: number;
  maxVcpus: number;
  minMemoryMiB: number;
  maxMemoryMiB: number;
  minDiskMiB: number;
  maxDiskMiB: number;
  /** The largest inactivity timeout a sandbox may ask for. */
  maxTimeoutSec: number;
}

function checkRange(name: string, value: number, min: number, max: number, unit: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new WrennError(
      "invalid_argument",
      `${name} must be an integer from ${min} to ${max}${unit}, got ${value}`,
    );
  }
}

/** Validates requested sizes against what one sandbox may have on this host. */
export function validateResources(resources: SandboxResources, limits: SandboxLimits): void {
  checkRange("vcpus", resources.vcpus, limits.minVcpus, limits.maxVcpus, "");
  checkRange("memory_mib", resources.memoryMiB, limits.minMemoryMiB, limits.maxMemoryMiB, " MiB");
  checkRange("disk_mib", resources.diskMiB, limits.minDiskMiB, limits.maxDiskMiB, " MiB");
}

export function validateTimeout(timeoutSec: number, limits: SandboxLimits): void {
  checkRange("timeout_sec", timeoutSec, 1, limits.maxTimeoutSec, " s");
}

const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function validateEnvVars(env: Record<string, string>): void {
  for (const [key, value] of Object.entries(env)) {
    if (!ENV_NAME_RE.test(key))
      throw new WrennError("invalid_argument", `env var name "${key}" is not valid`);
    if (value.includes("\0")) throw new WrennError("invalid_argument", `env var ${key} contains a NUL byte`);
  }
}

/** Resources held by these sandboxes: vCPUs and memory of those occupying a VM, disk of all but stopped ones. */
export function allocatedResources(records: Iterable<SandboxRecord>): SandboxResources {
  let vcpus = 0;
  let memoryMiB = 0;
  let diskMiB = 0;
  for (const record of records) {
    if (record.state === "running" || record.state === "pending") {
      vcpus += record.resources.vcpus;
      memoryMiB += record.resources.memoryMiB;
    }
    if (record.state !== "stopped") diskMiB += record.resources.diskMiB;
  }
  return { vcpus, memoryMiB, diskMiB };
}

/** What the host hands out: budgets over sandboxes' sizes, and a floor under its free memory. */
export interface HostCapacity {
  /** vCPUs: host cores × vCPU overcommit. */
  vcpus: number;
  /** Guest memory: (host memory − reserve) × memory overcommit. */
  memoryMiB: number;
  /**
   * A start is refused while the host's available memory is below this (overcommitted guests
   * that start using their memory show here first). 0: no check.
   */
  minAvailableMemoryMiB?: number;
}

/**
 * Refuses a start (no_capacity) that would take the host past its vCPU or memory budget, or
 * that comes while the host's available memory (`availableMiB`, when known) is below its floor.
 */
export function admitStart(
  used: SandboxResources,
  capacity: HostCapacity,
  resources: Pick<SandboxResources, "vcpus" | "memoryMiB">,
  availableMiB?: number,
): void {
  if (
    used.vcpus + resources.vcpus > capacity.vcpus ||
    used.memoryMiB + resources.memoryMiB > capacity.memoryMiB
  ) {
    throw new WrennError(
      "no_capacity",
      `host is full: ${used.vcpus}/${capacity.vcpus} vCPUs and ${used.memoryMiB}/${capacity.memoryMiB} MiB in use`,
    );
  }
  const floor = capacity.minAvailableMemoryMiB ?? 0;
  if (availableMiB !== undefined && floor > 0 && availableMiB < floor) {
    throw new WrennError(
      "no_capacity",
      `host memory is low: ${Math.floor(availableMiB)} MiB available, starts need at least ${floor} MiB`,
    );
  }
}
