import { WrennError } from "@wrenn/shared";

export interface HostSizing {
  /** Host CPU cores. */
  hostCores: number;
  /** One VM may have up to hostCores × this many vCPUs (1 = no overcommit). */
  vcpuOvercommit?: number;
  hostMemoryMiB: number;
  /** Memory kept back for the host itself; a VM may have at most hostMemoryMiB − this. */
  memoryReserveMiB: number;
  /** Smallest guest that boots the default image. */
  minMemoryMiB?: number;
}

export interface VmSize {
  vcpus: number;
  memoryMiB: number;
}

export const MIN_GUEST_MEMORY_MIB = 128;

/** The largest VM this host can run: vCPUs and memory bounds. */
export function vmSizeBounds(host: HostSizing): {
  minVcpus: 1;
  maxVcpus: number;
  minMemoryMiB: number;
  maxMemoryMiB: number;
} {
  const maxVcpus = Math.max(1, Math.floor(host.hostCores * (host.vcpuOvercommit ?? 1)));
  const minMemoryMiB = host.minMemoryMiB ?? MIN_GUEST_MEMORY_MIB;
  return { minVcpus: 1, maxVcpus, minMemoryMiB, maxMemoryMiB: host.hostMemoryMiB - host.memoryReserveMiB };
}

/**
 * Checks one VM's size against the host: vCPUs 1..cores×overcommit, memory
 * min..(host RAM − reserve). Throws WrennError("invalid_argument") naming the bound.
 */
export function validateVmSize(size: VmSize, host: HostSizing): VmSize {
  const b = vmSizeBounds(host);
  if (!Number.isInteger(size.vcpus) || size.vcpus < b.minVcpus || size.vcpus > b.maxVcpus) {
    const overcommit =
      (host.vcpuOvercommit ?? 1) === 1
        ? ""
        : ` (${host.hostCores} cores × overcommit ${host.vcpuOvercommit})`;
    throw new WrennError(
      "invalid_argument",
      `vcpus must be a whole number from 1 to ${b.maxVcpus}${overcommit}, got ${size.vcpus}`,
    );
  }
  if (b.maxMemoryMiB < b.minMemoryMiB) {
    throw new WrennError(
      "invalid_argument",
      `this host cannot run a VM: ${host.hostMemoryMiB} MiB RAM minus ${host.memoryReserveMiB} MiB reserve is below the ${b.minMemoryMiB} MiB minimum`,
    );
  }
  if (
    !Number.isInteger(size.memoryMiB) ||
    size.memoryMiB < b.minMemoryMiB ||
    size.memoryMiB > b.maxMemoryMiB
  ) {
    throw new WrennError(
      "invalid_argument",
      `memoryMiB must be a whole number from ${b.minMemoryMiB} to ${b.maxMemoryMiB} (host RAM ${host.hostMemoryMiB} MiB minus ${host.memoryReserveMiB} MiB reserve), got ${size.memoryMiB}`,
    );
  }
  return size;
}
