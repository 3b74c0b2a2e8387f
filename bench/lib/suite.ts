import type { MeasurementSet } from "./measurement.js";

/** What a suite receives from the runner. */
export interface SuiteContext {
  /** The repository root (absolute). */
  repoRoot: string;
  /** A scratch directory for this suite, removed after it. */
  scratchDir: string;
  /** Where the suite's figures go. */
  measurements: MeasurementSet;
  /** Progress for the person watching (stderr); figures go through `measurements`. */
  log(message: string): void;
}

/** A module under bench/suites/ exports these two. */
export interface SuiteModule {
  name: string;
  run(ctx: SuiteContext): Promise<void>;
}

export function isSuiteModule(value: unknown): value is SuiteModule {
  const m = value as Partial<SuiteModule> | undefined;
  return typeof m?.name === "string" && typeof m.run === "function";
}
