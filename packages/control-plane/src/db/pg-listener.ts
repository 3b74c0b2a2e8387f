import pg from "pg";

/** A LISTEN subscription that survives PostgreSQL restarts. */
export interface Listener {
  close(): Promise<void>;
}

export interface ListenOptions {
  /** A notification's payload. */
  onMessage(payload: string): void;
  /** The connection was lost and is open again; notifications in between were missed. */
  onReconnect?(): void;
  /** The connection failed or was lost (it is retried). */
  onError?(err: Error): void;
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 5000;

/**
 * LISTENs on `channel` over one dedicated connection (a pooled one would be handed to
 * other queries). When it fails or ends, it reconnects with backoff and LISTENs again.
 * Resolves once the first LISTEN is in place.
 */
export async function listenWithReconnect(
  connectionString: string,
  channel: string,
  options: ListenOptions,
): Promise<Listener> {
  let client: pg.Client | null = null;
  let closed = false;
  let retryMs = RETRY_MIN_MS;
  let timer: NodeJS.Timeout | undefined;
  let connectedOnce = false;

  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString });
    c.on("notification", (m) => {
      if (m.channel === channel && m.payload !== undefined) options.onMessage(m.payload);
    });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (err) options.onError?.(err);
      c.end().catch(() => undefined);
      if (client === c) client = null;
      retry();
    };
    c.on("error", onLost);
    c.on("end", () => onLost());
    await c.connect();
    await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    if (closed) {
      lost = true;
      await c.end();
      return;
    }
    client = c;
    retryMs = RETRY_MIN_MS;
    if (connectedOnce) options.onReconnect?.();
    connectedOnce = true;
  };

  const retry = () => {
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      connect().catch((err: unknown) => {
        options.onError?.(err instanceof Error ? err : new Error(String(err)));
        retryMs = Math.min(retryMs * 2, RETRY_MAX_MS);
        retry();
      });
    }, retryMs);
  };

  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = null;
      if (c) await c.end().catch(() => undefined);
    },
  };
}
