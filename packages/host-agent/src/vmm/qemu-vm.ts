import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { locateGuestMemory } from "../snapshot/guest-memory.js";
import { QEMU_RUN_FILES } from "./qemu-command.js";
import type { QmpClient } from "./qmp-client.js";
import type { Accel, GuestMemoryLocation, VmExit, VmHandle, VmRunState } from "./vmm-driver.js";
import { type ProcessIdentity, sameProcess } from "./vmm-process.js";

/** What the driver knows of a QEMU it started or adopted. */
export interface QemuVmInit {
  id: string;
  memoryBytes: number;
  /** Guest RAM's backing file, when it has one. */
  memoryFile: string | undefined;
  pid: number;
  accel: Accel;
  runDir: string;
  qmp: QmpClient;
  identity: ProcessIdentity;
  /** Our child (booted here) or undefined (adopted: polled through /proc). */
  child: ChildProcess | undefined;
  exitPollMs: number;
  stopTimeoutMs: number;
  cleanup(): Promise<void>;
  logger: Logger;
}

/** One running QEMU: its QMP monitor, its exit, and the ways to stop it. */
export class QemuVm implements VmHandle {
  readonly id: string;
  readonly pid: number;
  readonly accel: Accel;
  readonly consolePath: string;
  readonly exited: Promise<VmExit>;
  private readonly qmp: QmpClient;
  private expectedExit = false;
  private detached = false;
  private exit: VmExit | undefined;
  private resolveExit!: (exit: VmExit) => void;
  private poller: NodeJS.Timeout | undefined;
  private childListener: ((code: number | null, signal: NodeJS.Signals | null) => void) | undefined;

  constructor(private readonly init: QemuVmInit) {
    this.id = init.id;
    this.pid = init.pid;
    this.accel = init.accel;
    this.qmp = init.qmp;
    this.consolePath = join(init.runDir, QEMU_RUN_FILES.console);
    this.exited = new Promise<VmExit>((resolve) => {
      this.resolveExit = resolve;
    });
    const { child } = init;
    if (child && child.exitCode === null && child.signalCode === null) {
      this.childListener = (code, signal) => void this.onExit(code, signal);
      child.once("exit", this.childListener);
    } else if (child) {
      void this.onExit(child.exitCode, child.signalCode);
    } else {
      this.poller = setInterval(() => void this.poll(), init.exitPollMs);
      this.poller.unref();
    }
  }

  /** The QMP connection, for what the VmHandle contract does not cover yet (snapshots: migrate). */
  get monitor(): QmpClient {
    return this.qmp;
  }

  private async poll(): Promise<void> {
    if (!(await sameProcess(this.init.identity))) void this.onExit(null, null);
  }

  private async onExit(code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.exit || this.detached) return;
    this.exit = { code, signal, expected: this.expectedExit };
    clearInterval(this.poller);
    await this.qmp.close();
    await this.init
      .cleanup()
      .catch((err: unknown) => this.init.logger.warn("VMM cleanup failed", { sandbox: this.id, err }));
    this.resolveExit(this.exit);
  }

  private ensureRunning(what: string): void {
    if (this.exit) throw new WrennError("failed_precondition", `cannot ${what}: VM ${this.id} has exited`);
    if (this.detached)
      throw new WrennError("failed_precondition", `cannot ${what}: VM ${this.id} was detached`);
  }

  async pauseVcpus(): Promise<void> {
    this.ensureRunning("pause");
    await this.qmp.execute("stop");
  }

  async resumeVcpus(): Promise<void> {
    this.ensureRunning("resume");
    await this.qmp.execute("cont");
  }

  async saveDeviceState(path: string): Promise<void> {
    this.ensureRunning("save device state");
    await this.qmp.execute("xen-save-devices-state", { filename: path, live: false }, 60_000);
  }

  async guestMemory(): Promise<GuestMemoryLocation> {
    this.ensureRunning("locate guest memory");
    return locateGuestMemory(this.pid, this.init.memoryBytes, this.init.memoryFile);
  }

  async runState(): Promise<VmRunState> {
    this.ensureRunning("query");
    const status = await this.qmp.execute<{ status?: string; running?: boolean }>("query-status");
    if (status.status === "running") return "running";
    if (status.status === "paused") return "paused";
    return "other";
  }

  async stop(timeoutMs = this.init.stopTimeoutMs): Promise<VmExit> {
    if (this.exit) return this.exit;
    this.expectedExit = true;
    // microvm has no ACPI power button: quit is the clean stop. QEMU may close the socket
    // before its reply arrives, so the reply is not awaited for success.
    this.qmp.execute("quit", undefined, timeoutMs).catch(() => {});
    const timer = setTimeout(() => void this.signalKill(), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  async kill(): Promise<VmExit> {
    if (this.exit) return this.exit;
    this.expectedExit = true;
    await this.signalKill();
    return this.exited;
  }

  detach(): void {
    if (this.exit || this.detached) return;
    this.detached = true;
    clearInterval(this.poller);
    if (this.childListener) this.init.child?.off("exit", this.childListener);
    void this.qmp.close();
  }

  private async signalKill(): Promise<void> {
    if (this.exit) return;
    const { child } = this.init;
    if (
      child ? child.exitCode !== null || child.signalCode !== null : !(await sameProcess(this.init.identity))
    ) {
      return;
    }
    try {
      process.kill(this.pid, "SIGKILL");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ESRCH") throw err;
    }
  }
}
