/** What a waiting reader gets: an item, a timeout tick, or the end (with an error, if any). */
export type QueueResult<T> = { kind: "item"; item: T } | { kind: "timeout" } | { kind: "end"; error?: Error };

/**
 * A bounded single-reader queue between a push source (a watcher) and a pull reader (a
 * stream). Overflowing ends it with an error instead of growing without bound when the
 * reader stalls; `next` also wakes on a timeout (for keepalives) and on abort.
 */
export class EventQueue<T> {
  private readonly items: T[] = [];
  private ended: { error?: Error } | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly capacity: number) {}

  push(item: T): void {
    if (this.ended) return;
    if (this.items.length >= this.capacity) {
      this.end(new Error(`more than ${this.capacity} events pending; the reader is not keeping up`));
      return;
    }
    this.items.push(item);
    this.notify();
  }

  end(error?: Error): void {
    if (this.ended) return;
    this.ended = error ? { error } : {};
    this.notify();
  }

  /** Takes everything queued now (polling readers). Throws if the source failed. */
  drain(): T[] {
    if (this.ended?.error) throw this.ended.error;
    return this.items.splice(0, this.items.length);
  }

  async next(timeoutMs: number, signal: AbortSignal): Promise<QueueResult<T>> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) return { kind: "item", item };
      if (this.ended) return this.ended.error ? { kind: "end", error: this.ended.error } : { kind: "end" };
      if (signal.aborted) return { kind: "end" };
      const timedOut = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => finish(true), timeoutMs);
        const onAbort = () => finish(false);
        const finish = (value: boolean) => {
          clearTimeout(timer);
          signal.removeEventListener("abort", onAbort);
          this.wake = undefined;
          resolve(value);
        };
        signal.addEventListener("abort", onAbort, { once: true });
        this.wake = () => finish(false);
      });
      if (timedOut) return { kind: "timeout" };
    }
  }

  private notify(): void {
    this.wake?.();
  }
}
