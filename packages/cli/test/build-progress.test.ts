import type { BuildInfo } from "@wrenn/sdk";
import { describe, expect, it } from "vitest";
import { formatBuildDone, formatBuildFailure, formatLogEntry } from "../src/build-progress.js";
import { formatBytes } from "../src/format.js";

const entry = (step: string, message: string, level: "info" | "error" = "info") => ({
  offset: 0,
  timestamp: new Date(0),
  level,
  step,
  message,
});

const build = (over: Partial<BuildInfo>): BuildInfo => ({
  buildId: "bld_1",
  templateId: "tpl_1",
  template: "web",
  status: "ready",
  tags: ["latest"],
  hostId: "h",
  vcpus: 1,
  memoryMiB: 512,
  diskMiB: 2048,
  stepsCached: 0,
  stepsTotal: 7,
  error: null,
  createdAt: new Date(0),
  finishedAt: new Date(0),
  ...over,
});

describe("build progress", () => {
  it("shows step headers as they are, step output indented, the build's own lines marked", () => {
    expect(formatLogEntry(entry("3", "[3/7] RUN make"))).toBe("[3/7] RUN make");
    expect(formatLogEntry(entry("3", "cc -o app app.c"))).toBe("      cc -o app app.c");
    expect(formatLogEntry(entry("", "steps 1-2 cached on host h"))).toBe("  · steps 1-2 cached on host h");
    expect(formatLogEntry(entry("ready", "ready check passed"))).toBe("  · ready check passed");
    expect(formatLogEntry(entry("3", "step 3 failed", "error"))).toBeUndefined();
  });

  it("ends with the time, the cache's share and how to use the template", () => {
    expect(formatBuildDone(build({ stepsCached: 3 }), 12_345)).toBe(
      "template web ready in 12.3 s (3 steps from the cache, 7 in all)\nstart a sandbox from it: wrenn sandbox create web",
    );
    expect(formatBuildDone(build({}), 1000)).toContain("(no steps from the cache, 7 in all)");
  });

  it("prints a failure's first line as the error and its output tail indented", () => {
    const failed = build({
      status: "error",
      error: { message: "step 2 (RUN exit 7) failed with exit code 7:\nline a\nline b", step: "2" },
    });
    expect(formatBuildFailure(failed).split("\n")).toEqual([
      "error [build_failed]: template web: step 2 (RUN exit 7) failed with exit code 7:",
      "    line a",
      "    line b",
      "(hint: fix it and build again; the steps before it come from the cache. Full log: wrenn template logs bld_1)",
    ]);
  });

  it("sizes in binary units", () => {
    expect([formatBytes(512), formatBytes(2048), formatBytes(5 * 1024 ** 3)]).toEqual([
      "512 B",
      "2.0 KiB",
      "5.0 GiB",
    ]);
  });
});
