import { randomBytes } from "node:crypto";
import { createLogger } from "@wrenn/shared";
import { VmmCgroups } from "../src/host-cgroups/vmm-cgroups.js";
import { probeAccel } from "../src/vmm/accel-probe.js";
import { QEMU_RUN_FILES } from "../src/vmm/qemu-command.js";
import { defaultVmmOverheadMiB, hostTscKhz, QemuDriver } from "../src/vmm/qemu-driver.js";
import { findGuestImage } from "./guest-image.js";
import { registerVmmContract } from "./vmm-contract.js";

const QEMU = "qemu-system-x86_64";
const logger = createLogger({ level: process.env.WRENN_TEST_LOG === "1" ? "debug" : "error" });
const image = await findGuestImage();

registerVmmContract({
  name: "qemu",
  runDirFiles: Object.values(QEMU_RUN_FILES),
  async create() {
    // Its own cgroup parent, so an agent running elsewhere on the host never sweeps these groups.
    const cgroups = await VmmCgroups.create({
      logger,
      parentName: `wrenn-test-${randomBytes(3).toString("hex")}`,
    });
    const verdict = await probeAccel({
      requested: "auto",
      qemuBinary: QEMU,
      kernelPath: image.image?.kernelPath,
    });
    const tscKhz = await hostTscKhz();
    const tcgTbSizeMiB = 32;
    const makeDriver = () =>
      new QemuDriver({
        accel: verdict.accel,
        qemuBinary: QEMU,
        tscKhz,
        tcgTbSizeMiB,
        guestAslr: "auto",
        vmmOverheadMiB: defaultVmmOverheadMiB(verdict.accel, tcgTbSizeMiB),
        cgroups,
        logger,
      });
    return {
      driver: makeDriver(),
      restartedDriver: async () => makeDriver(),
      hostGroupExists: (id) => cgroups.exists(id),
      async dispose() {
        const left = await cgroups.list();
        await cgroups.removeParent();
        if (left.length > 0) throw new Error(`cgroups left behind: ${left.join(", ")}`);
      },
    };
  },
});
