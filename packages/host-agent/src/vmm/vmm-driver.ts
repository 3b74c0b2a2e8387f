/**
 * The contract every VMM back-end (QEMU today, Firecracker on KVM hosts) implements.
 * One shared contract test suite runs against each driver.
 */

/** How guest code executes: hardware virtualization, or QEMU's software emulation. */
export type Accel = "kvm" | "tcg";

export interface VmNetworkAttachment {
  /** Network namespace the VMM process runs in (it opens the TAP there). */
  netnsName: string;
  /** TAP device inside that namespace. */
  tapName: string;
  /** Guest NIC MAC; the same in every sandbox so snapshots restore into any slot. */
  guestMac: string;
}

export interface VmSpec {
  /** Sandbox id; names the VM in logs and records. */
  id: string;
  vcpus: number;
  memoryMiB: number;
  kernelPath: string;
  initrdPath: string;
  /** Guest kernel command line (root, ip=, init, ...); the driver appends what it needs (console, tsc). */
  kernelArgs: string;
  /** The sandbox's writable root disk (a qcow2 overlay over the read-only base). */
  rootDiskPath: string;
  /** Absent for a VM with no NIC (contract tests). */
  network?: VmNetworkAttachment | undefined;
  /**
   * Guest RAM in a file (the snapshot/template paths: share=true writes guest memory into the
   * file, share=false maps it copy-on-write). Absent: anonymous memory. The caller owns the file.
   */
  memoryFile?: VmMemoryFile | undefined;
  /** Private directory for this VM's sockets, pid file and logs; the driver creates files only here. */
  runDir: string;
}

export interface VmMemoryFile {
  path: string;
  share: boolean;
}

/** Where guest RAM lives in the VMM process (for reading it while the VM is stopped). */
export interface GuestMemoryLocation {
  pid: number;
  address: bigint;
  sizeBytes: number;
}

/** One page put into guest memory during a restore; undefined data means zeros. */
export interface RestorePage {
  offset: number;
  data: Buffer | undefined;
}

/**
 * A saved VM to bring back: guest RAM maps `memoryFile` copy-on-write (pages load lazily
 * as the guest touches them; the file is never written), `pages` go on top eagerly, then
 * the device state is loaded. The VM comes back paused.
 */
export interface VmRestoreSource {
  memoryFile: string;
  deviceStateFile: string;
  pages(): AsyncIterable<RestorePage>;
}

/** Files a driver may create in VmSpec.runDir (the caller removes the directory). */
export const VM_RUN_FILES = {
  /** The guest's serial console. */
  console: "console.log",
  /** The VMM's own stdout/stderr. */
  vmmLog: "vmm.log",
} as const;

/** What the vCPUs are doing, as far as the VMM knows. */
export type VmRunState = "running" | "paused" | "other";

export interface VmExit {
  /** Exit code of the VMM process, null when killed by a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the exit was requested through stop()/kill(); false means the VMM died on its own. */
  expected: boolean;
}

/** A running (or paused) VM. */
export interface VmHandle {
  readonly id: string;
  /** PID of the VMM process. */
  readonly pid: number;
  readonly accel: Accel;
  /** Resolves once the VMM process has exited, for whatever reason. */
  readonly exited: Promise<VmExit>;
  /** Path of the guest's serial console log. */
  readonly consolePath: string;
  /** Stops the vCPUs (the VM keeps its memory). */
  pauseVcpus(): Promise<void>;
  resumeVcpus(): Promise<void>;
  runState(): Promise<VmRunState>;
  /** Saves CPU and device state (not RAM) to a file; the vCPUs must be stopped. */
  saveDeviceState(path: string): Promise<void>;
  /** Guest RAM's place in the VMM process. */
  guestMemory(): Promise<GuestMemoryLocation>;

  /** Asks the VMM to quit and waits for the process to exit; kills it after timeoutMs. */
  stop(timeoutMs?: number): Promise<VmExit>;
  /** SIGKILLs the VMM and waits for exit. Safe to call more than once. */
  kill(): Promise<VmExit>;
  /**
   * Lets go of the VM without stopping it (agent shutdown that leaves VMs for adopt()):
   * closes the control connection and stops watching; `exited` then never resolves.
   */
  detach(): void;
}

export interface VmmDriver {
  readonly name: "qemu" | "firecracker";
  readonly accel: Accel;
  /** The accelerator and the driver's guest kernel arguments: memory snapshots of images are kept per profile. */
  readonly bootProfile: string;
  /**
   * Cold-boots a VM; resolves once the VMM runs and answers on its control socket
   * (not when the guest is ready). On failure nothing is left running.
   */
  boot(spec: VmSpec): Promise<VmHandle>;
  /**
   * Reattaches to a VMM process that survived an agent restart; null when the pid is gone
   * or is not this spec's VMM (pids get reused).
   */
  adopt(spec: VmSpec, pid: number): Promise<VmHandle | null>;
  /**
   * Starts a VMM that loads a saved VM (same machine shape as when it was saved) and
   * returns it paused. On failure nothing is left running.
   */
  restore(spec: VmSpec, source: VmRestoreSource): Promise<VmHandle>;
}
