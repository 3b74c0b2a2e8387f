import { spawn } from "node:child_process";
import { constants } from "node:fs";
import { access, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { accelArgs } from "./qemu-command.js";
import type { Accel } from "./vmm-driver.js";

export type AccelRequest = "auto" | "kvm" | "tcg";

export interface AccelVerdict {
  accel: Accel;
  /** One line for /health and `wrenn doctor`: what was decided and why. */
  reason: string;
  /** How the verdict was reached: a real KVM run, configuration, or a missing /dev/kvm. */
  method?: "probe" | "config" | "no-device";
  /** Time the KVM trial took, when one ran. */
  probeMs?: number;
}

export interface AccelProbeOptions {
  /** "auto" probes; "tcg" skips the probe; "kvm" probes and throws if KVM cannot run the guest. */
  requested: AccelRequest;
  qemuBinary: string;
  /**
   * The guest kernel to try under KVM. Without one the probe runs a tiny real-mode payload,
   * which proves a vCPU runs but not that this kernel does.
   */
  kernelPath?: string | undefined;
  /** Budget for the trial; a working KVM prints the kernel banner in well under a second. */
  timeoutMs?: number;
  kvmDevice?: string;
  /** Test hook: run the trial under this accelerator instead (tcg checks the trial itself works). */
  trialAccel?: Accel;
}

/** Marker the payload prints, and the kernel's first line. */
const PAYLOAD_MARKER = "WRENN-KVM-OK";
const KERNEL_MARKER = "Linux version";

/**
 * Decides whether VMs here run under KVM or TCG by really running guest code under KVM
 * with the same accelerator and CPU arguments the driver boots with.
 *
 * /dev/kvm existing is not enough: this host's /dev/kvm is PVM, which runs only
 * PVM-enlightened kernels; QEMU dies on its first vCPU register write ("failed to set
 * MSR 0x10a"), and with that MSR masked a real-mode payload runs but a stock kernel
 * still does not. So the trial boots the guest kernel itself until its banner appears
 * on the serial console (early console on), and anything else (QEMU exits, prints an
 * error, stays silent past the timeout) means no KVM.
 *
 * Call once per agent start and keep the verdict (`createAccelProbe` memoizes it).
 */
export async function probeAccel(options: AccelProbeOptions): Promise<AccelVerdict> {
  if (options.requested === "tcg") {
    return { accel: "tcg", reason: "TCG (software emulation) forced by configuration", method: "config" };
  }
  const device = options.kvmDevice ?? "/dev/kvm";
  const usable = await access(device, constants.R_OK | constants.W_OK).then(
    () => true,
    () => false,
  );
  if (!usable) {
    const why = `${device} is absent or not accessible`;
    if (options.requested === "kvm")
      throw new WrennError("failed_precondition", `KVM was requested but ${why}`);
    return { accel: "tcg", reason: `${why}; using TCG (software emulation)`, method: "no-device" };
  }
  const trial = await runKvmTrial(options);
  const what = options.kernelPath ? "the guest kernel" : "a test payload";
  if (trial.ok) {
    return {
      accel: "kvm",
      reason: `KVM ran ${what} (${trial.detail} after ${trial.ms} ms)`,
      method: "probe",
      probeMs: trial.ms,
    };
  }
  if (options.requested === "kvm") {
    throw new WrennError("failed_precondition", `KVM was requested but cannot run ${what}: ${trial.detail}`);
  }
  return {
    accel: "tcg",
    reason: `${device} exists but KVM cannot run ${what} (${trial.detail}); using TCG (software emulation)`,
    method: "probe",
    probeMs: trial.ms,
  };
}

/** Runs the probe at most once; later calls get the same verdict (per agent start). */
export function createAccelProbe(options: AccelProbeOptions): () => Promise<AccelVerdict> {
  let verdict: Promise<AccelVerdict> | undefined;
  return () => {
    verdict ??= probeAccel(options);
    return verdict;
  };
}

export interface Trial {
  ok: boolean;
  ms: number;
  detail: string;
}

/** Runs the guest kernel (or the payload) under KVM until its marker appears on the console. */
export async function runKvmTrial(options: AccelProbeOptions): Promise<Trial> {
  const timeoutMs = options.timeoutMs ?? 5000;
  let tempDir: string | undefined;
  const target: string[] = [];
  if (options.kernelPath) {
    target.push("-kernel", options.kernelPath, "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1");
  } else {
    tempDir = await mkdtemp(join(tmpdir(), "wrenn-kvm-probe-"));
    const rom = join(tempDir, "probe.rom");
    await writeFile(rom, payloadRom());
    target.push("-bios", rom);
  }
  const marker = options.kernelPath ? KERNEL_MARKER : PAYLOAD_MARKER;
  try {
    return await runQemu(
      options.qemuBinary,
      [
        ...[
          "-M",
          "microvm",
          ...accelArgs({ accel: options.trialAccel ?? "kvm", tcgTbSizeMiB: 16 }),
          "-m",
          "128",
          "-smp",
          "1",
        ],
        ...["-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-serial", "stdio"],
        ...target,
      ],
      marker,
      timeoutMs,
    );
  } finally {
    if (tempDir) await rm(tempDir, { recursive: true, force: true });
  }
}

/** Runs QEMU (our own short-lived child, so pipes are fine) until `marker` shows up. */
function runQemu(binary: string, args: string[], marker: string, timeoutMs: number): Promise<Trial> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let done = false;
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      const ms = Date.now() - started;
      if (child.exitCode === null && child.signalCode === null) {
        child.once("exit", () => resolve({ ok, ms, detail }));
        child.kill("SIGKILL");
      } else {
        resolve({ ok, ms, detail });
      }
    };
    const timer = setTimeout(
      () => finish(false, `guest printed nothing recognisable within ${timeoutMs} ms`),
      timeoutMs,
    );
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      if (stdout.includes(marker)) finish(true, `"${marker}" on the console`);
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    child.on("error", (err) => finish(false, `cannot run ${binary}: ${err.message}`));
    child.on("close", (code, signal) => finish(false, describeExit(stderr, code, signal)));
  });
}

function describeExit(stderr: string, code: number | null, signal: NodeJS.Signals | null): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.replace(/^qemu-system-\w+: /, "").trim())
    .filter(Boolean);
  const first = lines.find((l) => /error|fail|assert/i.test(l)) ?? lines[0];
  const how = signal ? `killed by ${signal}` : `exit ${code}`;
  return first ? `QEMU ${how}: ${first}` : `QEMU ${how} before the guest printed anything`;
}

/**
 * A 64 KiB firmware image whose reset vector (at 0xFFF0) writes the marker to COM1 in
 * real mode and halts.
 */
function payloadRom(): Buffer {
  const rom = Buffer.alloc(64 * 1024, 0xf4); // hlt everywhere
  const code: number[] = [0xba, 0xf8, 0x03]; // mov dx, 0x3f8
  for (const ch of `${PAYLOAD_MARKER}\n`) code.push(0xb0, ch.charCodeAt(0), 0xee); // mov al, ch; out dx, al
  code.push(0xfa, 0xf4, 0xeb, 0xfd); // cli; hlt; jmp $-1
  // The reset vector has 16 bytes before the end of the ROM: jump back to room for the code.
  const codeAt = 0xf000;
  Buffer.from(code).copy(rom, codeAt);
  // jmp near rel16 from 0xfff0 (3 bytes) to codeAt.
  const rel = codeAt - (0xfff0 + 3);
  rom[0xfff0] = 0xe9;
  rom.writeInt16LE(rel, 0xfff1);
  return rom;
}
