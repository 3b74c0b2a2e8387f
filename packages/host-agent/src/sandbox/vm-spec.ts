import type { GuestImage } from "../images/image-catalog.js";
import {
  GUEST_GATEWAY_IP,
  GUEST_IP,
  GUEST_PREFIX_LENGTH,
  type SandboxNetwork,
} from "../network/sandbox-network.js";
import type { VmSpec } from "../vmm/vmm-driver.js";
import type { SandboxRecord } from "./sandbox-record.js";

/** The VM a sandbox runs in: its sizes, the image's kernel, its disk layer, its slot's TAP. */
export function sandboxVmSpec(
  record: SandboxRecord,
  network: Pick<SandboxNetwork, "netnsName" | "tapName" | "guestMac">,
  image: Pick<GuestImage, "kernelPath" | "initrdPath" | "kernelArgs">,
): VmSpec {
  const ip = `ip=${GUEST_IP}::${GUEST_GATEWAY_IP}:${GUEST_PREFIX_LENGTH}:sandbox:eth0:off`;
  return {
    id: record.id,
    vcpus: record.resources.vcpus,
    memoryMiB: record.resources.memoryMiB,
    kernelPath: image.kernelPath,
    initrdPath: image.initrdPath,
    kernelArgs: `root=/dev/vda rw ${ip} ${image.kernelArgs}`.trim(),
    rootDiskPath: record.overlayPath ?? "",
    network: { netnsName: network.netnsName, tapName: network.tapName, guestMac: network.guestMac },
    runDir: record.runDir,
  };
}
