import type { Logger } from "@wrenn/shared";

/** A background job run every `intervalMs`; runs never overlap. */
export interface Worker {
  name: string;
  intervalMs: number;
  tick(): Promise<void>;
}

/** Runs workers on their intervals until stopped; a failing tick is logged, not fatal. */
export class WorkerRunner {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  private stopped = true;

  constructor(
    private readonly workers: Worker[],
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    for (const worker of this.workers) this.schedule(worker);
  }

  private schedule(worker: Worker): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      const run = worker
        .tick()
        .catch((err: unknown) => this.logger.error("worker tick failed", { worker: worker.name, err }))
        .finally(() => {
          this.running.delete(run);
          this.schedule(worker);
        });
      this.running.add(run);
    }, worker.intervalMs);
    this.timers.set(worker.name, timer);
  }

  /** Runs one tick of each worker now (tests, and start-up so hosts are known at once). */
  async runOnce(): Promise<void> {
    for (const worker of this.workers) {
      await worker
        .tick()
        .catch((err: unknown) => this.logger.error("worker tick failed", { worker: worker.name, err }));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.running]);
  }
}
