import { WrennError } from "@wrenn/shared";
import type { SandboxResources } from "./sandbox-record.js";

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
