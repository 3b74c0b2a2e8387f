import { mkdirSync, writeFileSync } from "node:fs";
import { arch, cpus, release, totalmem } from "node:os";
import { join } from "node:path";
import type { Measurement } from "./measurement.js";

export interface SuiteResult {
  suite: string;
  startedAt: string;
  durationMs: number;
  host: {
    node: string;
    platform: string;
    arch: string;
    kernel: string;
    cpus: number;
    cpuModel: string;
    memMiB: number;
  };
  measurements: Measurement[];
}

export function describeHost(): SuiteResult["host"] {
  const cpuList = cpus();
  return {
    node: process.version,
    platform: process.platform,
    arch: arch(),
    kernel: release(),
    cpus: cpuList.length,
    cpuModel: cpuList[0]?.model ?? "unknown",
    memMiB: Math.round(totalmem() / 1024 / 1024),
  };
}

/**
 * Writes bench/results/<suite>-<time>.json and returns its path. The time is ISO 8601 in
 * UTC with ":" replaced by "-", so the name is a valid file name everywhere and sorts by time.
 */
export function writeSuiteResult(resultsDir: string, result: SuiteResult): string {
  mkdirSync(resultsDir, { recursive: true });
  const stamp = result.startedAt.replace(/:/g, "-");
  const path = join(resultsDir, `${result.suite}-${stamp}.json`);
  writeFileSync(path, `${JSON.stringify(result, null, 2)}\n`);
  return path;
}
