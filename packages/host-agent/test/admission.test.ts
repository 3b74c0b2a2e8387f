import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { describe, expect, it } from "vitest";
import { parseAgentConfig } from "../src/config.js";
import { hostCapacity } from "../src/create-agent.js";
import { procMeminfoProbe } from "../src/drivers-system/host-memory.js";
import { admitStart } from "../src/sandbox/sandbox-limits.js";

const codeOf = (fn: () => void): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return WrennError.from(err).code;
  }
};

describe("admission", () => {
  const capacity = { vcpus: 4, memoryMiB: 2048, minAvailableMemoryMiB: 1024 };
  const none = { vcpus: 0, memoryMiB: 0, diskMiB: 0 };
  const one = { vcpus: 1, memoryMiB: 512 };

  it("admits within the budgets while the host has memory available", () => {
    expect(codeOf(() => admitStart(none, capacity, one, 4096))).toBeUndefined();
    expect(
      codeOf(() => admitStart({ vcpus: 3, memoryMiB: 1536, diskMiB: 0 }, capacity, one, 1024)),
    ).toBeUndefined();
  });

  it("refuses with no_capacity past a budget or below the available-memory floor", () => {
    expect(codeOf(() => admitStart({ vcpus: 4, memoryMiB: 0, diskMiB: 0 }, capacity, one, 4096))).toBe(
      "no_capacity",
    );
    expect(codeOf(() => admitStart({ vcpus: 0, memoryMiB: 1600, diskMiB: 0 }, capacity, one, 4096))).toBe(
      "no_capacity",
    );
    expect(codeOf(() => admitStart(none, capacity, one, 1023))).toBe("no_capacity");
    // A floor of 0, or an unknown figure, leaves the budgets alone in charge.
    expect(
      codeOf(() => admitStart(none, { ...capacity, minAvailableMemoryMiB: 0 }, one, 10)),
    ).toBeUndefined();
    expect(codeOf(() => admitStart(none, capacity, one, undefined))).toBeUndefined();
  });

  it("sizes the budgets from the host and the overcommit factors", () => {
    const config = parseAgentConfig({
      dataDir: "/x",
      imagesDir: "/y",
      hostToken: "t".repeat(16),
      hostCores: 2,
      hostMemoryMiB: 24_000,
      memoryReserveMiB: 2000,
      vcpuOvercommit: 16,
      memoryOvercommit: 3,
    });
    expect(hostCapacity(config)).toEqual({ vcpus: 32, memoryMiB: 66_000, minAvailableMemoryMiB: 1024 });
  });

  it("reads MemAvailable from a meminfo file, and treats an unreadable one as unlimited", () => {
    const dir = mkdtempSync(join(tmpdir(), "wrenn-meminfo-"));
    try {
      const path = join(dir, "meminfo");
      writeFileSync(path, "MemTotal:       24684000 kB\nMemFree:  100 kB\nMemAvailable:   2097152 kB\n");
      expect(procMeminfoProbe(path).availableMiB()).toBe(2048);
      expect(procMeminfoProbe(join(dir, "missing")).availableMiB()).toBe(Number.POSITIVE_INFINITY);
      expect(procMeminfoProbe("/proc/meminfo").availableMiB()).toBeGreaterThan(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
