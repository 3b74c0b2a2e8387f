/**
 * Usage arithmetic over metric samples, kept pure so it is tested without a database.
 * The SQL in metrics-service.ts applies the same rules; a test checks that they agree.
 */

/** One sandbox sample as far as usage is concerned. */
export interface UsageSample {
  sandboxId: string;
  tsMs: number;
  cpuCount: number;
  /** Percent of all the sandbox's vCPUs (0–100). */
  cpuUsedPct: number;
  /** Memory the guest sees, bytes. */
  memTotal: number;
}

/** Sums for one UTC day. */
export interface UsageTotals {
  cpuSeconds: number;
  memByteSeconds: number;
  sandboxSeconds: number;
}

export interface UsageDay {
  /** YYYY-MM-DD, UTC. */
  date: string;
  cpuMinutes: number;
  memoryGibHours: number;
  sandboxHours: number;
}

const GIB = 1024 ** 3;
const DAY_MS = 86_400_000;

/**
 * The time one sample stands for, in seconds: the time since the same sandbox's previous
 * sample, when that gap is at most two sample intervals; otherwise (the first sample, or a
 * gap while it was paused or the sampler was down) one sample interval.
 */
export function sampleSeconds(prevTsMs: number | undefined, tsMs: number, sampleMs: number): number {
  if (prevTsMs !== undefined) {
    const gapMs = tsMs - prevTsMs;
    if (gapMs >= 0 && gapMs <= 2 * sampleMs) return gapMs / 1000;
  }
  return sampleMs / 1000;
}

/** The UTC day of a time, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Per-day sums of samples (any order); each sample counts on the day of its own timestamp. */
export function aggregateUsage(samples: readonly UsageSample[], sampleMs: number): Map<string, UsageTotals> {
  const sorted = [...samples].sort((a, b) => a.sandboxId.localeCompare(b.sandboxId) || a.tsMs - b.tsMs);
  const days = new Map<string, UsageTotals>();
  let prev: UsageSample | undefined;
  for (const s of sorted) {
    const seconds = sampleSeconds(prev?.sandboxId === s.sandboxId ? prev.tsMs : undefined, s.tsMs, sampleMs);
    const day = utcDay(s.tsMs);
    const totals = days.get(day) ?? { cpuSeconds: 0, memByteSeconds: 0, sandboxSeconds: 0 };
    totals.cpuSeconds += (seconds * s.cpuCount * s.cpuUsedPct) / 100;
    totals.memByteSeconds += seconds * s.memTotal;
    totals.sandboxSeconds += seconds;
    days.set(day, totals);
    prev = s;
  }
  return days;
}

/**
 * The last `days` UTC days ending with today's, oldest first, each in the units the API
 * answers (CPU-minutes, memory GiB-hours, sandbox-hours); a day without samples is zeros.
 */
export function usageDays(totals: ReadonlyMap<string, UsageTotals>, days: number, nowMs: number): UsageDay[] {
  const out: UsageDay[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const date = utcDay(nowMs - i * DAY_MS);
    const t = totals.get(date);
    out.push({
      date,
      cpuMinutes: (t?.cpuSeconds ?? 0) / 60,
      memoryGibHours: (t?.memByteSeconds ?? 0) / GIB / 3600,
      sandboxHours: (t?.sandboxSeconds ?? 0) / 3600,
    });
  }
  return out;
}

/** Start of the first of the last `days` UTC days ending with today's. */
export function usageWindowStartMs(days: number, nowMs: number): number {
  return Date.parse(`${utcDay(nowMs - (days - 1) * DAY_MS)}T00:00:00Z`);
}

/** Sandboxes created per second between two team rows; 0 without a previous row. */
export function startRate(created: number, prevTsMs: number | undefined, tsMs: number): number {
  if (prevTsMs === undefined || tsMs <= prevTsMs) return 0;
  return created / ((tsMs - prevTsMs) / 1000);
}
