import { spawn } from "node:child_process";
import { access, constants } from "node:fs/promises";
import type { Accel } from "./vmm-driver.js";

export interface AccelVerdict {
  accel: Accel;
  reason: string;
}

export interface AccelProbeOptions {
  /** "auto" probes; "kvm"/"tcg" force a choice (forcing kvm still fails loudly if it cannot run). */
  requested: "auto" | "kvm" | "tcg";
  qemuBinary: string;
  /** A guest kernel to boot for the probe: KVM counts as working only if it prints its banner. */
  kernelPath: string;
  timeoutMs: number;
}

/**
 * Decides whether QEMU can use KVM on this host by actually running a guest kernel
 * under it until it prints "Linux version". /dev/kvm existing is not enough: a PVM
 * host exposes /dev/kvm but fails stock kernels on their first MSR write.
 */
export async function probeAccel(options: AccelProbeOptions): Promise<AccelVerdict> {
  if (options.requested === "tcg") return { accel: "tcg", reason: "TCG requested by configuration" };
  try {
    await access("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch {
    return { accel: "tcg", reason: "/dev/kvm is absent or not accessible; using TCG software emulation" };
  }
  const result = await bootUnderKvm(options);
  if (result.ok) return { accel: "kvm", reason: `KVM ran a guest kernel (banner after ${result.ms} ms)` };
  if (options.requested === "kvm") {
    throw new Error(`KVM was requested but cannot run a guest here: ${result.detail}`);
  }
  return {
    accel: "tcg",
    reason: `/dev/kvm present but cannot run this guest kernel (${result.detail}); using TCG`,
  };
}

function bootUnderKvm(options: AccelProbeOptions): Promise<{ ok: boolean; ms: number; detail: string }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(
      options.qemuBinary,
      [
        ...["-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", "128", "-smp", "1"],
        ...["-nodefaults", "-no-user-config", "-nographic", "-no-reboot"],
        ...[
          "-kernel",
          options.kernelPath,
          "-append",
          "console=ttyS0 panic=-1 earlyprintk=ttyS0",
          "-serial",
          "stdio",
        ],
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    let done = false;
    const finish = (ok: boolean, detail: string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      resolve({ ok, ms: Date.now() - started, detail });
    };
    const timer = setTimeout(
      () => finish(false, `no kernel banner within ${options.timeoutMs} ms`),
      options.timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Linux version")) finish(true, "");
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("error", (err) => finish(false, err.message));
    child.on("exit", () => {
      const firstError = output.split("\n").find((l) => l.includes("error") || l.includes("Assertion")) ?? "";
      finish(false, firstError.replace(/^qemu-system-x86_64: /, "").trim() || "QEMU exited");
    });
  });
}
