/**
 * An unbounded-by-type but watermark-aware async queue: producers push, one consumer
 * iterates. `onPressure(true)` fires when the backlog passes the high-water mark and
 * `onPressure(false)` once it drains below half of it, so producers can pause their source.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private backlogBytes = 0;
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private closed = false;
  private pressured = false;

  constructor(
    private readonly options: {
      highWaterBytes?: number;
      sizeOf?: (item: T) => number;
      onPressure?: (pressured: boolean) => void;
    } = {},
  ) {}

  push(item: T): void {
    if (this.closed) return;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting({ value: item, done: false });
      return;
    }
    this.items.push(item);
    this.backlogBytes += this.options.sizeOf?.(item) ?? 0;
    const hwm = this.options.highWaterBytes;
    if (hwm !== undefined && !this.pressured && this.backlogBytes > hwm) {
      this.pressured = true;
      this.options.onPressure?.(true);
    }
  }

  /** Ends the stream after the items already queued. */
  close(): void {
    this.closed = true;
    const waiting = this.waiting;
    if (waiting && this.items.length === 0) {
      this.waiting = undefined;
      waiting({ value: undefined, done: true });
    }
  }

  get isPressured(): boolean {
    return this.pressured;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private shift(): T | undefined {
    const item = this.items.shift();
    if (item === undefined) return undefined;
    this.backlogBytes -= this.options.sizeOf?.(item) ?? 0;
    const hwm = this.options.highWaterBytes;
    if (hwm !== undefined && this.pressured && this.backlogBytes <= hwm / 2) {
      this.pressured = false;
      this.options.onPressure?.(false);
    }
    return item;
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.shift() as T, done: false });
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) => {
      this.waiting = resolve;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
