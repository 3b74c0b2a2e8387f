import type { z } from "zod";
import type { E2bMetricSchema } from "./e2b-views.js";

export type E2bMetric = z.infer<typeof E2bMetricSchema>;

/** Takes one sample of a running sandbox; throws when it is not running (or is gone). */
export type MetricSampler = () => Promise<E2bMetric>;

export interface MetricsHistoryOptions {
  /** Time between background samples of a sandbox someone has asked about. */
  intervalMs: number;
  /** Samples kept per sandbox (oldest dropped first). */
  maxSamples: number;
  /** A sandbox nobody has asked about for this long is no longer sampled (its history is dropped). */
  idleMs: number;
  now(): number;
}

interface Series {
  samples: E2bMetric[];
  /** The sampler of the latest request (it carries that caller's authority). */
  sample: MetricSampler;
  lastAskedMs: number;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Per-sandbox metric series for GET /sandboxes/{id}/metrics. The control plane does not
 * sample every sandbox all the time: the first request for a sandbox starts a background
 * sample every `intervalMs`, kept while the sandbox runs and someone keeps asking (within
 * `idleMs`), up to `maxSamples`. A range query answers the samples inside it, so a caller
 * that polls (the SDK's usual pattern) gets a real series rather than one point.
 */
export class MetricsHistory {
  private readonly series = new Map<string, Series>();

  constructor(private readonly options: MetricsHistoryOptions) {}

  /**
   * The samples with `startSec <= timestampUnix <= endSec` (seconds, as the SDK sends them).
   * A fresh sample is taken first when the newest is older than the interval, so an open
   * range always ends with the current state. A sandbox that is not running has none.
   */
  async query(
    sandboxId: string,
    sample: MetricSampler,
    startSec?: number,
    endSec?: number,
  ): Promise<E2bMetric[]> {
    const now = this.options.now();
    let series = this.series.get(sandboxId);
    if (!series) {
      series = { samples: [], sample, lastAskedMs: now, timer: undefined };
      this.series.set(sandboxId, series);
    }
    series.sample = sample;
    series.lastAskedMs = now;
    const newest = series.samples.at(-1);
    if (!newest || now - newest.timestampUnix * 1000 >= this.options.intervalMs) {
      try {
        this.push(series, await sample());
      } catch (err) {
        this.forget(sandboxId);
        throw err;
      }
    }
    this.schedule(sandboxId, series);
    return series.samples.filter(
      (m) =>
        (startSec === undefined || m.timestampUnix >= startSec) &&
        (endSec === undefined || m.timestampUnix <= endSec),
    );
  }

  /** Stops sampling and drops the history of every sandbox. */
  close(): void {
    for (const id of [...this.series.keys()]) this.forget(id);
  }

  private push(series: Series, metric: E2bMetric): void {
    series.samples.push(metric);
    if (series.samples.length > this.options.maxSamples) series.samples.shift();
  }

  private schedule(sandboxId: string, series: Series): void {
    if (series.timer) return;
    series.timer = setTimeout(() => {
      series.timer = undefined;
      if (this.series.get(sandboxId) !== series) return;
      if (this.options.now() - series.lastAskedMs > this.options.idleMs) {
        this.forget(sandboxId);
        return;
      }
      series.sample().then(
        (metric) => {
          if (this.series.get(sandboxId) !== series) return;
          this.push(series, metric);
          this.schedule(sandboxId, series);
        },
        // Not running any more (paused, killed, its host gone): the series ends here.
        () => this.forget(sandboxId),
      );
    }, this.options.intervalMs);
    // Background sampling never keeps the process alive.
    series.timer.unref();
  }

  private forget(sandboxId: string): void {
    const series = this.series.get(sandboxId);
    if (series?.timer) clearTimeout(series.timer);
    this.series.delete(sandboxId);
  }
}
