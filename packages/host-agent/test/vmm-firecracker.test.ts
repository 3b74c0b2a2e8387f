import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { probeAccel } from "../src/vmm/accel-probe.js";
import { findGuestImage } from "./guest-image.js";
import { registerVmmContract } from "./vmm-contract.js";

const run = promisify(execFile);

/** Why the Firecracker contract run cannot happen on this machine (undefined: it could). */
async function firecrackerSkipReason(): Promise<string | undefined> {
  const installed = await run("firecracker", ["--version"]).then(
    () => true,
    () => false,
  );
  if (!installed) return "the firecracker binary is not installed";
  const image = await findGuestImage();
  const verdict = await probeAccel({
    requested: "auto",
    qemuBinary: "qemu-system-x86_64",
    kernelPath: image.image?.kernelPath,
  });
  if (verdict.accel !== "kvm") return `Firecracker needs KVM: ${verdict.reason}`;
  return "there is no Firecracker VmmDriver yet (a later issue)";
}

const skipReason = await firecrackerSkipReason();

registerVmmContract({
  name: "firecracker",
  skipReason: skipReason ?? "there is no Firecracker VmmDriver yet (a later issue)",
  runDirFiles: [],
  create: () => Promise.reject(new Error("no Firecracker driver yet")),
});
