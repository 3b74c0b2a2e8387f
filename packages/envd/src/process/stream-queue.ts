/** What a waiting reader gets: an item, a quiet period (for keepalives), or the end. */
export type QueueRead<T> = { kind: "item"; item: T } | { kind: "idle" } | { kind: "end" };

export interface StreamQueueOptions<T> {
  /** Backlog size in bytes above which `onPressure(true)` fires; `onPressure(false)` at half. */
  highWaterBytes: number;
  sizeOf: (item: T) => number;
  onPressure: (pressured: boolean) => void;
}

/**
 * A single-reader queue between a push source (a process's output) and a pull reader (a
 * server stream). It does not drop or refuse items: it reports pressure so the source can
 * pause, which keeps memory bounded without losing output.
 */
export class StreamQueue<T> {
  private readonly items: T[] = [];
  private head = 0;
  private backlogBytes = 0;
  private closed = false;
  private pressured = false;
  private wake: (() => void) | undefined;

  constructor(private readonly options: StreamQueueOptions<T>) {}

  get isPressured(): boolean {
    return this.pressured;
  }

  push(item: T): void {
    if (this.closed) return;
    this.items.push(item);
    this.backlogBytes += this.options.sizeOf(item);
    if (!this.pressured && this.backlogBytes > this.options.highWaterBytes) {
      this.pressured = true;
      this.options.onPressure(true);
    }
    this.notify();
  }

  /** No more items; the reader still gets those already queued. */
  close(): void {
    this.closed = true;
    this.notify();
  }

  /** The next item, `idle` after `idleMs` without one, or `end` once closed and empty or aborted. */
  async next(idleMs: number, signal: AbortSignal): Promise<QueueRead<T>> {
    for (;;) {
      if (signal.aborted) return { kind: "end" };
      if (this.head < this.items.length) return { kind: "item", item: this.shift() };
      if (this.closed) return { kind: "end" };
      const idle = await new Promise<boolean>((resolve) => {
        const finish = (value: boolean) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          this.wake = undefined;
          resolve(value);
        };
        const timer = setTimeout(() => finish(true), idleMs);
        const onAbort = () => finish(false);
        signal.addEventListener("abort", onAbort, { once: true });
        this.wake = () => finish(false);
      });
      if (idle) return { kind: "idle" };
    }
  }

  private shift(): T {
    const item = this.items[this.head] as T;
    this.items[this.head] = undefined as T;
    this.head++;
    // Compact now and then so a long stream does not keep a growing array of holes.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items.splice(0, this.head);
      this.head = 0;
    }
    this.backlogBytes -= this.options.sizeOf(item);
    if (this.pressured && this.backlogBytes <= this.options.highWaterBytes / 2) {
      this.pressured = false;
      this.options.onPressure(false);
    }
    return item;
  }

  private notify(): void {
    this.wake?.();
  }
}
