/** Milliseconds since an arbitrary origin, at nanosecond resolution. */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Runs `fn` and returns how long it took, in milliseconds. */
export async function timeMs(fn: () => Promise<unknown>): Promise<number> {
  const start = nowMs();
  await fn();
  return nowMs() - start;
}

export interface InterleaveOptions {
  runs: number;
  /** Untimed runs of each variant first (JIT, connection pools, page cache). */
  warmup?: number;
}

/**
 * Times several variants of the same operation, alternating between them run by run, so
 * drift in the machine's load lands on all of them alike and their ratio stays meaningful.
 */
export async function timeInterleaved<K extends string>(
  variants: Record<K, () => Promise<unknown>>,
  options: InterleaveOptions,
): Promise<Record<K, number[]>> {
  const keys = Object.keys(variants) as K[];
  for (let i = 0; i < (options.warmup ?? 0); i++) {
    for (const k of keys) await variants[k]();
  }
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let i = 0; i < options.runs; i++) {
    for (const k of keys) samples[k].push(await timeMs(variants[k]));
  }
  return samples;
}
