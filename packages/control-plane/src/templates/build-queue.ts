import type { Logger } from "@wrenn/shared";

/**
 * Runs builds at most `concurrency` at a time, in the order they were queued. A build id is
 * queued once however often it is enqueued.
 */
export class BuildQueue {
  private readonly waiting: string[] = [];
  private readonly running = new Map<string, Promise<void>>();
  private stopped = false;

  constructor(
    private readonly concurrency: number,
    private readonly run: (buildId: string) => Promise<void>,
    private readonly logger: Logger,
  ) {}

  enqueue(buildId: string): void {
    if (this.stopped || this.running.has(buildId) || this.waiting.includes(buildId)) return;
    this.waiting.push(buildId);
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.concurrency && this.waiting.length > 0) {
      const id = this.waiting.shift() as string;
      const done = this.run(id)
        .catch((err: unknown) => this.logger.error("template build crashed", { build: id, err }))
        .finally(() => {
          this.running.delete(id);
          this.pump();
        });
      this.running.set(id, done);
    }
  }

  /** Stops taking builds and waits for the running ones. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.waiting.length = 0;
    await Promise.all(this.running.values());
  }

  /** Resolves when every queued and running build has finished (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.all(this.running.values());
  }
}
