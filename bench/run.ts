/**
 * Benchmark runner: `npm run bench` runs every suite in bench/suites/, `npm run bench -- envd`
 * only the named ones. Figures go to stdout, progress to stderr, and each suite's result to
 * bench/results/<suite>-<time>.json.
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { holdTestRunLock } from "../tests/sweep-test-leftovers.js";
import { MeasurementSet } from "./lib/measurement.js";
import { formatMeasurements } from "./lib/report.js";
import { describeHost, writeSuiteResult } from "./lib/results-file.js";
import { isSuiteModule, type SuiteModule } from "./lib/suite.js";

const benchDir = import.meta.dirname;
const repoRoot = resolve(benchDir, "..");
const suitesDir = join(benchDir, "suites");
const resultsDir = join(benchDir, "results");

async function loadSuites(): Promise<SuiteModule[]> {
  const files = readdirSync(suitesDir)
    .filter((f) => f.endsWith(".ts"))
    .sort();
  const suites: SuiteModule[] = [];
  for (const file of files) {
    const mod: unknown = await import(pathToFileURL(join(suitesDir, file)).href);
    if (!isSuiteModule(mod)) throw new Error(`bench/suites/${file} must export 'name' and 'run'`);
    if (mod.name !== basename(file, ".ts"))
      throw new Error(`bench/suites/${file} exports name '${mod.name}'`);
    suites.push(mod);
  }
  return suites;
}

async function runSuite(suite: SuiteModule): Promise<void> {
  const startedAt = new Date();
  const t0 = performance.now();
  const scratchDir = mkdtempSync(join(tmpdir(), `wrenn-bench-${suite.name}-`));
  const measurements = new MeasurementSet();
  const log = (message: string) => process.stderr.write(`[${suite.name}] ${message}\n`);
  try {
    await suite.run({ repoRoot, scratchDir, measurements, log });
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
  const durationMs = performance.now() - t0;
  process.stdout.write(`${formatMeasurements(suite.name, measurements.list)}`);
  const path = writeSuiteResult(resultsDir, {
    suite: suite.name,
    startedAt: startedAt.toISOString(),
    durationMs,
    host: describeHost(),
    measurements: measurements.list,
  });
  process.stdout.write(`(${(durationMs / 1000).toFixed(1)} s; ${path})\n\n`);
}

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => a !== "--");
  const all = await loadSuites();
  const unknown = wanted.filter((w) => !all.some((s) => s.name === w));
  if (unknown.length > 0) {
    throw new Error(
      `unknown suite(s): ${unknown.join(", ")}; available: ${all.map((s) => s.name).join(", ")}`,
    );
  }
  const selected = wanted.length === 0 ? all : all.filter((s) => wanted.includes(s.name));
  // While benchmarks run, a test run's setup does not take their VMs for leftovers.
  const release = process.getuid?.() === 0 ? holdTestRunLock() : undefined;
  if (process.getuid?.() === 0 && !release) {
    process.stderr.write("a test run is in progress on this machine: its load will disturb the figures\n");
  }
  process.once("exit", () => release?.());
  let failed = 0;
  for (const suite of selected) {
    try {
      await runSuite(suite);
    } catch (err) {
      failed++;
      process.stderr.write(
        `[${suite.name}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
      );
    }
  }
  if (failed > 0) process.exitCode = 1;
}

await main();
