import { type Summary, summarize } from "./stats.js";

/**
 * "ms" and "s" are lower-is-better times, "KiB" and "MiB" lower-is-better sizes, "%core" lower-is-better
 * CPU use (100 = one core busy); rates are higher-is-better.
 */
export type Unit = "ms" | "s" | "KiB" | "MiB" | "%core" | "MB/s" | "ops/s";

export function higherIsBetter(unit: Unit): boolean {
  return unit === "MB/s" || unit === "ops/s";
}

export interface Measurement {
  name: string;
  unit: Unit;
  summary: Summary;
  /** Name of the measurement in the same run this one is compared with. */
  baseline?: string;
  /** p50 / baseline p50 (and p95 / p95), set when the baseline is in the same run. */
  ratio?: { p50: number; p95: number };
  notes?: string;
  samples: number[];
}

export interface RecordOptions {
  baseline?: string;
  notes?: string;
}

/** Collects one suite's measurements, resolving each baseline by name as it is recorded. */
export class MeasurementSet {
  readonly list: Measurement[] = [];

  record(name: string, unit: Unit, samples: number[], options: RecordOptions = {}): Measurement {
    if (this.list.some((m) => m.name === name)) throw new Error(`measurement '${name}' recorded twice`);
    const summary = summarize(samples);
    const m: Measurement = { name, unit, summary, samples: [...samples] };
    if (options.notes !== undefined) m.notes = options.notes;
    if (options.baseline !== undefined) {
      const base = this.list.find((b) => b.name === options.baseline);
      if (base === undefined) throw new Error(`baseline '${options.baseline}' of '${name}' not recorded yet`);
      if (base.unit !== unit)
        throw new Error(`baseline '${base.name}' is in ${base.unit}, '${name}' in ${unit}`);
      m.baseline = base.name;
      m.ratio = { p50: summary.p50 / base.summary.p50, p95: summary.p95 / base.summary.p95 };
    }
    this.list.push(m);
    return m;
  }
}
