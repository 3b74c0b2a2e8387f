/**
 * Lets at most `limit` VM starts (boots, restores) run at once; the rest wait in arrival
 * order. On a busy host this keeps each start fast enough to finish within its deadlines,
 * instead of a hundred VMMs all starving each other of CPU.
 */
export class StartGate {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`start limit must be ≥ 1, got ${limit}`);
  }

  /** Runs `fn` once a place is free. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  /** Starts running plus starts waiting. */
  get pending(): number {
    return this.running + this.waiting.length;
  }
}
