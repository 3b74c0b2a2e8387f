import { describe, expect, it } from "vitest";
import { bootProfile, driverKernelArgs } from "../src/vmm/qemu-command.js";

describe("the driver's guest kernel arguments", () => {
  const words = (s: string) => s.split(" ");

  it("turns address randomisation off under TCG by default and leaves it on under KVM", () => {
    expect(words(driverKernelArgs({ accel: "tcg", tscKhz: 2_000_000, guestAslr: "auto" }))).toContain(
      "norandmaps",
    );
    expect(words(driverKernelArgs({ accel: "kvm", tscKhz: undefined, guestAslr: "auto" }))).not.toContain(
      "norandmaps",
    );
  });

  it("follows an explicit setting under either accelerator", () => {
    expect(words(driverKernelArgs({ accel: "tcg", tscKhz: undefined, guestAslr: "on" }))).not.toContain(
      "norandmaps",
    );
    expect(words(driverKernelArgs({ accel: "kvm", tscKhz: undefined, guestAslr: "off" }))).toContain(
      "norandmaps",
    );
  });

  it("gives image snapshots one profile per accelerator and kernel arguments, whatever the host's TSC rate", () => {
    const tcgAuto = bootProfile({ accel: "tcg", guestAslr: "auto" });
    expect(tcgAuto).toMatch(/^tcg-[0-9a-f]{8}$/);
    expect(bootProfile({ accel: "tcg", guestAslr: "off" })).toBe(tcgAuto);
    expect(bootProfile({ accel: "tcg", guestAslr: "on" })).not.toBe(tcgAuto);
    expect(bootProfile({ accel: "kvm", guestAslr: "auto" })).toMatch(/^kvm-/);
  });
});
