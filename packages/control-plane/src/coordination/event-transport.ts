import type { Logger } from "@wrenn/shared";
import { sql } from "kysely";
import type { Database } from "../db/database.js";
import type { Listener } from "../db/pg-listener.js";
import type { WrennEvent } from "../events/event-bus.js";

/** Carries each published event to every replica's event bus (this one's included). */
export interface EventTransport {
  /** Sends an event; never throws and never waits (failures are logged). */
  send(event: WrennEvent): void;
  /** Starts delivering every replica's events to `deliver`. */
  start(deliver: (event: WrennEvent) => void): Promise<void>;
  close(): Promise<void>;
}

/** One process: an event is delivered here at once. */
export class LocalEventTransport implements EventTransport {
  private deliver: ((event: WrennEvent) => void) | null = null;

  send(event: WrennEvent): void {
    this.deliver?.(event);
  }

  async start(deliver: (event: WrennEvent) => void): Promise<void> {
    this.deliver = deliver;
  }

  async close(): Promise<void> {
    this.deliver = null;
  }
}

export const EVENTS_CHANNEL = "wrenn_events";
/** NOTIFY payloads must stay under 8000 bytes; a larger event goes through `event_spill`. */
const MAX_PAYLOAD_BYTES = 7900;
/** Spilled events are read within moments; older rows are deleted as new ones are written. */
const SPILL_KEEP_MS = 10 * 60_000;

/**
 * PostgreSQL LISTEN/NOTIFY. Each replica sends its events with `pg_notify` one at a time (so
 * they arrive in the order published) and LISTENs on a dedicated connection that reconnects
 * after a server restart; events sent while it was down are missed (logged), as for an SSE
 * client that reconnects.
 */
export class PgNotifyEventTransport implements EventTransport {
  private chain: Promise<void> = Promise.resolve();
  private listener: Listener | null = null;
  private closed = false;

  constructor(
    private readonly database: Database,
    private readonly logger: Logger,
  ) {}

  send(event: WrennEvent): void {
    if (this.closed) return;
    this.chain = this.chain
      .then(() => this.notify(event))
      .catch((err: unknown) => this.logger.warn("event notify failed", { err, type: event.type }));
  }

  private async notify(event: WrennEvent): Promise<void> {
    const { db } = this.database;
    let payload = JSON.stringify(event);
    if (Buffer.byteLength(payload) > MAX_PAYLOAD_BYTES) {
      await db.insertInto("event_spill").values({ id: event.id, body: payload }).execute();
      await sql`DELETE FROM event_spill WHERE created_at < now() - ${SPILL_KEEP_MS} * interval '1 millisecond'`.execute(
        db,
      );
      payload = JSON.stringify({ spill: event.id });
    }
    await sql`SELECT pg_notify(${EVENTS_CHANNEL}, ${payload})`.execute(db);
  }

  private async receive(payload: string, deliver: (event: WrennEvent) => void): Promise<void> {
    const parsed = JSON.parse(payload) as WrennEvent | { spill: string };
    if (!("spill" in parsed)) return deliver(parsed);
    const row = await this.database.db
      .selectFrom("event_spill")
      .select("body")
      .where("id", "=", parsed.spill)
      .executeTakeFirst();
    if (row) deliver(row.body as WrennEvent);
  }

  async start(deliver: (event: WrennEvent) => void): Promise<void> {
    const listen = this.database.listen;
    if (!listen) throw new Error("PgNotifyEventTransport needs a PostgreSQL database");
    this.listener = await listen(EVENTS_CHANNEL, {
      onMessage: (payload) => {
        this.receive(payload, deliver).catch((err: unknown) =>
          this.logger.warn("event notification unreadable", { err }),
        );
      },
      onReconnect: () =>
        this.logger.warn("event listener reconnected; events published meanwhile were missed"),
      onError: (err) => this.logger.warn("event listener connection failed", { error: err.message }),
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    await this.listener?.close();
    this.listener = null;
  }
}

/** LISTEN/NOTIFY on PostgreSQL (replicas may share it); in-process on PGlite. */
export function createEventTransport(database: Database, logger: Logger): EventTransport {
  return database.listen ? new PgNotifyEventTransport(database, logger) : new LocalEventTransport();
}
