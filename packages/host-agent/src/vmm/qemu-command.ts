import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { runCommand } from "../drivers-system/run-command.js";
import { type Accel, VM_RUN_FILES, type VmSpec } from "./vmm-driver.js";

/** Where the QEMU driver keeps its per-VM files inside VmSpec.runDir. */
export const QEMU_RUN_FILES = {
  ...VM_RUN_FILES,
  qmpSocket: "qmp.sock",
  incomingSocket: "incoming.sock",
  pidFile: "vmm.pid",
} as const;

/** The id of the guest RAM backend; fixed so a snapshot restores into any backend type. */
export const MEMORY_BACKEND_ID = "mem";

export interface QemuMachineOptions {
  accel: Accel;
  /** Host TSC rate in kHz, passed to TCG guests as tsc_early_khz (without it ~22 % of TCG boots hang). */
  tscKhz: number | undefined;
  /** TCG translation cache size; QEMU's default reserves 1 GiB per VM. */
  tcgTbSizeMiB: number;
  /** Address space randomisation in the guest: "auto" turns it off under TCG only (see driverKernelArgs). */
  guestAslr: GuestAslr;
}

export type GuestAslr = "auto" | "on" | "off";

/** The accelerator and CPU model; the accel probe uses exactly these so its verdict holds for boots. */
export function accelArgs(options: Pick<QemuMachineOptions, "accel" | "tcgTbSizeMiB">): string[] {
  return options.accel === "kvm"
    ? ["-accel", "kvm", "-cpu", "host"]
    : ["-accel", `tcg,tb-size=${options.tcgTbSizeMiB}`, "-cpu", "max"];
}

/**
 * Kernel arguments the driver always adds before the caller's. TCG: the host TSC rate,
 * because microvm has neither HPET nor PM timer to calibrate against, and `tsc=reliable`
 * (nothing to check the TSC against either, so no clocksource watchdog). KVM: kvm-clock.
 * Both, for idle guests that cost the host little (every wakeup of an idle guest costs host
 * CPU, a lot of it under TCG; every guest page written is a page its clone no longer shares):
 * `nowatchdog` (the soft-lockup detector wakes the vCPU every 4 s to prove nothing) and no
 * proactive compaction (kcompactd would wake twice a second and move pages about).
 *
 * `norandmaps` (guestAslr "off", and "auto" under TCG): TCG keys each translated block by
 * its virtual address as well as its physical one, so with randomised mappings every new
 * process (each command is a fresh `bash -l`) retranslates bash and libc from scratch.
 * With fixed mappings the translations are reused: `bash -l -c true` in the guest drops
 * from ~110 to ~30 ms and exec through the stack from ~270 to ~70 ms (bench `hot-path`).
 * The isolation boundary is the VM, not the guest's address space layout; a sandbox's
 * root can turn it back on (kernel.randomize_va_space). Under KVM there is nothing to gain.
 */
export function driverKernelArgs(
  options: Pick<QemuMachineOptions, "accel" | "tscKhz" | "guestAslr">,
): string {
  const args = ["console=ttyS0", "panic=-1", "nowatchdog", "sysctl.vm.compaction_proactiveness=0"];
  if (options.accel === "kvm") args.push("clocksource=kvm-clock");
  else {
    args.push("tsc=reliable");
    if (options.tscKhz) args.push(`tsc_early_khz=${options.tscKhz}`);
  }
  const aslr = options.guestAslr === "auto" ? options.accel === "kvm" : options.guestAslr === "on";
  if (!aslr) args.push("norandmaps");
  return args.join(" ");
}

/**
 * What a cold-booted guest takes from the driver besides its image: the accelerator and
 * the kernel arguments other than the host's TSC rate. A memory snapshot of an image is
 * only valid for the same profile (its kernel booted with those arguments).
 */
export function bootProfile(options: Pick<QemuMachineOptions, "accel" | "guestAslr">): string {
  const args = driverKernelArgs({ ...options, tscKhz: undefined });
  return `${options.accel}-${createHash("sha256").update(args).digest("hex").slice(0, 8)}`;
}

/**
 * The qemu-system-x86_64 arguments (without the binary) for a spec. `incoming`: start
 * paused, waiting for a migration stream (a restore); device-only saves carry no
 * configuration section, so the target must not expect one.
 */
export function qemuArgs(spec: VmSpec, options: QemuMachineOptions, incoming = false): string[] {
  const run = (name: string) => optValue(join(spec.runDir, name));
  const memory = spec.memoryFile
    ? `memory-backend-file,id=${MEMORY_BACKEND_ID},size=${spec.memoryMiB}M,mem-path=${optValue(spec.memoryFile.path)},share=${spec.memoryFile.share ? "on" : "off"}`
    : `memory-backend-ram,id=${MEMORY_BACKEND_ID},size=${spec.memoryMiB}M`;
  const args = [
    ...["-name", `wrenn-${spec.id}`],
    // ACPI stays on: this kernel finds the virtio-mmio devices only through ACPI.
    ...["-M", `microvm,memory-backend=${MEMORY_BACKEND_ID}`, ...accelArgs(options)],
    ...["-smp", String(spec.vcpus), "-m", `${spec.memoryMiB}M`, "-object", memory],
    ...["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"],
    // A restore's guest booted long ago: without -kernel QEMU does not hold the kernel and
    // initrd in its own memory for fw_cfg (~15 MiB per VM that no page cache shares).
    ...(incoming
      ? []
      : [
          ...["-kernel", spec.kernelPath, "-initrd", spec.initrdPath],
          ...["-append", `${driverKernelArgs(options)} ${spec.kernelArgs}`.trim()],
        ]),
    ...["-drive", `id=root,file=${optValue(spec.rootDiskPath)},format=qcow2,if=none`],
    ...["-device", "virtio-blk-device,drive=root"],
    ...["-object", "rng-random,filename=/dev/urandom,id=rng0", "-device", "virtio-rng-device,rng=rng0"],
    // append=on: a restore into the same run dir keeps the console history.
    ...["-chardev", `file,id=console,path=${run(QEMU_RUN_FILES.console)},append=on`],
    ...["-serial", "chardev:console"],
    ...["-qmp", `unix:${run(QEMU_RUN_FILES.qmpSocket)},server=on,wait=off`],
    ...["-pidfile", join(spec.runDir, QEMU_RUN_FILES.pidFile)],
  ];
  if (incoming) {
    args.push("-S", "-incoming", "defer", "-global", "migration.send-configuration=off");
  }
  if (spec.network) {
    // No vhost: this host kernel has no vhost-net.
    args.push(
      ...["-netdev", `tap,id=net0,ifname=${spec.network.tapName},script=no,downscript=no`],
      ...["-device", `virtio-net-device,netdev=net0,mac=${spec.network.guestMac}`],
    );
  }
  return args;
}

/** A value inside a QEMU `key=value,...` option: commas are doubled. */
function optValue(value: string): string {
  return value.replaceAll(",", ",,");
}

/** The host's TSC rate in kHz from /proc/cpuinfo (first CPU's "cpu MHz"); undefined if unknown. */
export async function hostTscKhz(cpuinfoPath = "/proc/cpuinfo"): Promise<number | undefined> {
  const text = await readFile(cpuinfoPath, "utf8").catch(() => "");
  return parseTscKhz(text);
}

export function parseTscKhz(cpuinfo: string): number | undefined {
  const mhz = /^cpu MHz\s*:\s*([\d.]+)/m.exec(cpuinfo)?.[1];
  const khz = mhz ? Math.round(Number(mhz) * 1000) : Number.NaN;
  return Number.isFinite(khz) && khz > 0 ? khz : undefined;
}

/**
 * What `<binary> --version` prints first (e.g. "QEMU emulator version 7.2.22 (…)"): a saved
 * device state restores only into the QEMU build that saved it. "unknown" when it cannot run.
 */
export async function qemuVersion(binary: string): Promise<string> {
  const out = await runCommand(binary, ["--version"], { timeoutMs: 10_000 }).catch(() => undefined);
  return out?.stdout.split("\n")[0]?.trim() || "unknown";
}
