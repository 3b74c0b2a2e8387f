import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import type { VmmCgroups } from "../host-cgroups/vmm-cgroups.js";
import { QmpClient } from "./qmp-client.js";
import type { Accel, VmExit, VmHandle, VmmDriver, VmSpec } from "./vmm-driver.js";

export interface QemuDriverOptions {
  accel: Accel;
  qemuBinary: string;
  /** Host TSC rate; passed to TCG guests as tsc_early_khz (without it ~22 % of boots hang). */
  tscKhz: number | undefined;
  /** TCG translation cache size; QEMU's default (1 GiB reserved) is far more than a sandbox needs. */
  tcgTbSizeMiB: number;
  /** Memory the VMM itself may use beyond guest RAM, for its cgroup limit. */
  vmmOverheadMiB: number;
  cgroups: VmmCgroups;
  logger: Logger;
}

/** Reads the host's TSC rate in kHz from /proc/cpuinfo (the "cpu MHz" of the first CPU). */
export async function hostTscKhz(): Promise<number | undefined> {
  const text = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(text)?.[1];
  return mhz ? Math.round(Number(mhz) * 1000) : undefined;
}

function pidAlive(pid: number): Promise<boolean> {
  // A zombie has an empty cmdline: treat it as gone.
  return readFile(`/proc/${pid}/cmdline`, "utf8").then(
    (c) => c.length > 0,
    () => false,
  );
}

class QemuVm implements VmHandle {
  readonly exited: Promise<VmExit>;
  private expectedExit = false;
  private resolveExit!: (exit: VmExit) => void;
  private poller: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    readonly pid: number,
    readonly accel: Accel,
    private readonly qmp: QmpClient,
    child: ChildProcess | undefined,
    onExit: () => Promise<void>,
  ) {
    this.exited = new Promise<VmExit>((resolve) => {
      this.resolveExit = resolve;
    }).then(async (exit) => {
      qmp.close();
      await onExit();
      return exit;
    });
    if (child) {
      child.once("exit", (code, signal) => this.resolveExit({ code, signal, expected: this.expectedExit }));
    } else {
      // Not our child (adopted after an agent restart): watch /proc instead.
      this.poller = setInterval(async () => {
        if (!(await pidAlive(pid))) {
          clearInterval(this.poller);
          this.resolveExit({ code: null, signal: null, expected: this.expectedExit });
        }
      }, 200);
      this.poller.unref();
    }
  }

  async pauseVcpus(): Promise<void> {
    await this.qmp.execute("stop");
  }

  async resumeVcpus(): Promise<void> {
    await this.qmp.execute("cont");
  }

  /** The QMP connection, for snapshot operations (migrate and friends). */
  get monitor(): QmpClient {
    return this.qmp;
  }

  async stop(timeoutMs = 5000): Promise<VmExit> {
    this.expectedExit = true;
    await this.qmp.execute("quit", undefined, timeoutMs).catch(() => {});
    // A ref'd timer: the VMM process is unref'd, so without it Node could exit mid-stop.
    const timer = setTimeout(() => this.signalKill(), timeoutMs);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }

  async kill(): Promise<VmExit> {
    this.expectedExit = true;
    this.signalKill();
    // Keep the event loop alive until the exit is observed (the VMM process handle is unref'd).
    const keepAlive = setInterval(() => {}, 1000);
    try {
      return await this.exited;
    } finally {
      clearInterval(keepAlive);
    }
  }

  private signalKill(): void {
    try {
      process.kill(this.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

/**
 * Runs sandboxes as `qemu-system-x86_64 -M microvm` processes inside their network
 * namespaces, one QMP socket each. VMMs are detached from the agent, so an agent
 * restart leaves them running for adopt().
 */
export class QemuDriver implements VmmDriver {
  readonly name = "qemu" as const;

  constructor(private readonly options: QemuDriverOptions) {}

  get accel(): Accel {
    return this.options.accel;
  }

  /** The full QEMU command line for a spec (exposed for tests and the snapshot work). */
  commandLine(spec: VmSpec): string[] {
    const o = this.options;
    const accelArgs =
      o.accel === "kvm"
        ? ["-accel", "kvm", "-cpu", "host"]
        : ["-accel", `tcg,tb-size=${o.tcgTbSizeMiB}`, "-cpu", "max"];
    const clockArgs = o.accel === "tcg" && o.tscKhz ? ` tsc_early_khz=${o.tscKhz}` : "";
    const args = [
      ...["-name", `wrenn-${spec.id}`, "-M", "microvm", ...accelArgs],
      ...["-smp", String(spec.vcpus), "-m", `${spec.memoryMiB}M`],
      ...["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"],
      ...["-kernel", spec.kernelPath, "-initrd", spec.initrdPath],
      ...["-append", `console=ttyS0 quiet panic=-1${clockArgs} ${spec.kernelArgs}`],
      ...[
        "-drive",
        `id=root,file=${spec.rootDiskPath},format=qcow2,if=none`,
        "-device",
        "virtio-blk-device,drive=root",
      ],
      ...["-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0"],
      ...["-serial", `file:${join(spec.runDir, "console.log")}`],
      ...["-qmp", `unix:${join(spec.runDir, "qmp.sock")},server=on,wait=off`],
      ...["-pidfile", join(spec.runDir, "vmm.pid")],
    ];
    if (spec.network) {
      args.push(
        ...["-netdev", `tap,id=net0,ifname=${spec.network.tapName},script=no,downscript=no`],
        ...["-device", `virtio-net-device,netdev=net0,mac=${spec.network.guestMac}`],
      );
    }
    return args;
  }

  async boot(spec: VmSpec): Promise<VmHandle> {
    const args = this.commandLine(spec);
    const [file, argv] = spec.network
      ? ["ip", ["netns", "exec", spec.network.netnsName, this.options.qemuBinary, ...args]]
      : [this.options.qemuBinary, args];
    const logPath = join(spec.runDir, "vmm.log");
    const logFd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      // Detached with no pipes: the VMM must outlive an agent restart and never block on our stdio.
      child = spawn(file, argv as string[], { detached: true, stdio: ["ignore", logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    const pid = child.pid;
    if (pid === undefined) throw new WrennError("internal", `cannot start ${this.options.qemuBinary}`);
    child.unref();
    const earlyExit = new Promise<never>((_, reject) => {
      child.once("exit", async (code, signal) => {
        const log = (await readFile(logPath, "utf8").catch(() => ""))
          .trim()
          .split("\n")
          .slice(-3)
          .join(" | ");
        reject(new WrennError("internal", `QEMU exited at start (code ${code}, signal ${signal}): ${log}`));
      });
    });
    earlyExit.catch(() => {});
    try {
      await this.options.cgroups.place(spec.id, pid, {
        memoryBytes: (spec.memoryMiB + this.options.vmmOverheadMiB) * 1024 * 1024,
        vcpus: spec.vcpus,
      });
      const qmp = await Promise.race([
        QmpClient.connect(join(spec.runDir, "qmp.sock"), { timeoutMs: 15_000 }),
        earlyExit,
      ]);
      return new QemuVm(spec.id, pid, this.options.accel, qmp, child, () =>
        this.options.cgroups.remove(spec.id),
      );
    } catch (err) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) resolve();
        else child.once("exit", () => resolve());
      });
      await this.options.cgroups.remove(spec.id);
      throw WrennError.from(err);
    }
  }

  async adopt(spec: VmSpec, pid: number): Promise<VmHandle | null> {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
    if (
      !cmdline.startsWith(this.options.qemuBinary.split("/").pop() ?? "qemu") &&
      !cmdline.includes("qemu-system")
    ) {
      return null;
    }
    if (!cmdline.includes(spec.runDir)) return null;
    try {
      const qmp = await QmpClient.connect(join(spec.runDir, "qmp.sock"), { timeoutMs: 5000 });
      return new QemuVm(spec.id, pid, this.options.accel, qmp, undefined, () =>
        this.options.cgroups.remove(spec.id),
      );
    } catch (err) {
      this.options.logger.warn("cannot reattach to VMM", { sandbox: spec.id, pid, err });
      return null;
    }
  }
}
