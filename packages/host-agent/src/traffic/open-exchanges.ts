/**
 * Exchanges the traffic hop has open with each sandbox, so they can be ended when the
 * sandbox stops running (paused, destroyed): its VM is gone without closing a single
 * connection, and a relayed stream (a command's output, a terminal) would wait forever.
 */

/** One relayed exchange: where it goes, and how to end it with a reason. */
export interface OpenExchange {
  address: string;
  cut(reason: string): void;
}

export class OpenExchanges {
  private readonly bySandbox = new Map<string, Set<OpenExchange>>();
  private readonly checking = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param addressOf where a sandbox's ports answer now (after any lifecycle operation under
   *   way), undefined when it is not running
   */
  constructor(
    private readonly addressOf: (sandboxId: string) => Promise<string | undefined>,
    private readonly intervalMs = 1000,
  ) {}

  /** Tracks an exchange until the returned function is called. */
  add(sandboxId: string, exchange: OpenExchange): () => void {
    let set = this.bySandbox.get(sandboxId);
    if (!set) {
      set = new Set();
      this.bySandbox.set(sandboxId, set);
    }
    set.add(exchange);
    this.timer ??= setInterval(() => this.checkAll(), this.intervalMs).unref();
    return () => {
      set.delete(exchange);
      if (set.size === 0 && this.bySandbox.get(sandboxId) === set) this.bySandbox.delete(sandboxId);
      if (this.bySandbox.size === 0) this.stop();
    };
  }

  close(): void {
    this.stop();
    this.bySandbox.clear();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private checkAll(): void {
    for (const sandboxId of this.bySandbox.keys()) {
      if (this.checking.has(sandboxId)) continue;
      this.checking.add(sandboxId);
      this.addressOf(sandboxId)
        .then((address) => {
          for (const exchange of [...(this.bySandbox.get(sandboxId) ?? [])]) {
            if (exchange.address !== address) {
              exchange.cut(`sandbox ${sandboxId} stopped running (paused or destroyed)`);
            }
          }
        })
        .catch(() => {})
        .finally(() => this.checking.delete(sandboxId));
    }
  }
}

/**
 * Follows the envelopes of a Connect streaming response (1 flag byte, 4 length bytes,
 * the message) so the hop knows when the bytes relayed so far end on a message boundary.
 */
export class EnvelopeBoundary {
  private headerBytes: number[] = [];
  private payloadLeft = 0;

  observe(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - i);
        this.payloadLeft -= take;
        i += take;
        continue;
      }
      this.headerBytes.push(chunk[i] ?? 0);
      i++;
      if (this.headerBytes.length === 5) {
        const [, a = 0, b = 0, c = 0, d = 0] = this.headerBytes;
        this.payloadLeft = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
        this.headerBytes = [];
      }
    }
  }

  atBoundary(): boolean {
    return this.headerBytes.length === 0 && this.payloadLeft === 0;
  }
}

/** A Connect end-of-stream message carrying an error (always JSON, whatever the codec). */
export function endStreamWithError(code: string, message: string): Buffer {
  const payload = Buffer.from(JSON.stringify({ error: { code, message } }));
  const header = Buffer.alloc(5);
  header.writeUInt8(0x02, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Whether a response's content type is a Connect stream. */
export function isConnectStream(contentType: string | undefined): boolean {
  return (contentType ?? "").startsWith("application/connect+");
}
