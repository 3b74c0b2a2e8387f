import type { Logger } from "@wrenn/shared";
import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { ChannelRow } from "../db/schema.js";
import { newDeliveryId } from "../ids.js";
import type { EventBus, WrennEvent } from "./event-bus.js";
import {
  signWebhook,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./webhook-signature.js";

export interface ChannelDispatcherOptions {
  maxAttempts: number;
  retryBaseMs: number;
  timeoutMs: number;
}

/** The JSON body of one delivery. */
export function webhookPayload(event: WrennEvent): string {
  return JSON.stringify({
    id: event.id,
    type: event.type,
    team_id: event.teamId,
    created_at: event.createdAt,
    data: event.data,
  });
}

function wants(channel: ChannelRow, type: string): boolean {
  return channel.events.length === 0 || channel.events.includes(type) || channel.events.includes("*");
}

/** Slack past the receiver timeout before a claim on a delivery lapses. */
const CLAIM_MARGIN_MS = 5000;

/**
 * Delivers events to the matching per-team webhooks. Each delivery is recorded in
 * channel_deliveries and retried with exponential backoff; all of it runs off the
 * publisher's path (a slow or dead receiver never delays the API). The replica that
 * published the event sends it; each row is claimed until its next attempt is due, and a
 * row whose claim lapsed (that replica died) is taken over by `takeOver`. Delivery is at
 * least once: a replica killed after the POST but before recording it is sent again.
 */
export class ChannelDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private unsubscribe: (() => void) | null = null;

  constructor(
    private readonly db: Db,
    private readonly logger: Logger,
    private readonly options: ChannelDispatcherOptions,
  ) {}

  attach(bus: EventBus): void {
    this.unsubscribe = bus.subscribe((event) => this.track(this.dispatch(event)));
  }

  private track(work: Promise<void>): void {
    const guarded = work.catch((err: unknown) => this.logger.error("webhook dispatch failed", { err }));
    this.inFlight.add(guarded);
    void guarded.finally(() => this.inFlight.delete(guarded));
  }

  private async dispatch(event: WrennEvent): Promise<void> {
    if (this.stopped || event.teamId === null) return;
    const channels = await this.db
      .selectFrom("channels")
      .selectAll()
      .where("team_id", "=", event.teamId)
      .where("enabled", "=", true)
      .execute();
    const body = webhookPayload(event);
    for (const channel of channels) {
      if (!wants(channel, event.type)) continue;
      const deliveryId = newDeliveryId();
      await this.db
        .insertInto("channel_deliveries")
        .values({
          id: deliveryId,
          channel_id: channel.id,
          event_id: event.id,
          event_type: event.type,
          status: "pending",
          last_error: null,
          delivered_at: null,
          body,
          claimed_until: sql<Date>`now() + ${this.options.timeoutMs + CLAIM_MARGIN_MS} * interval '1 millisecond'`,
        })
        .execute();
      this.track(this.attempt(channel, deliveryId, event.type, body, 1));
    }
  }

  private async attempt(
    channel: ChannelRow,
    deliveryId: string,
    type: string,
    body: string,
    attempt: number,
  ): Promise<void> {
    if (this.stopped) return;
    let error: string | null = null;
    try {
      const timestamp = String(Math.floor(Date.now() / 1000));
      const res = await fetch(channel.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
          [WEBHOOK_SIGNATURE_HEADER]: signWebhook(channel.secret, timestamp, body),
          [WEBHOOK_EVENT_HEADER]: type,
        },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) error = `receiver answered ${res.status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    if (error === null) {
      await this.db
        .updateTable("channel_deliveries")
        .set({ status: "delivered", attempts: attempt, last_error: null, delivered_at: new Date() })
        .where("id", "=", deliveryId)
        .execute();
      return;
    }
    const final = attempt >= this.options.maxAttempts;
    const delayMs = this.options.retryBaseMs * 2 ** (attempt - 1);
    const claimMs = delayMs + this.options.timeoutMs + CLAIM_MARGIN_MS;
    await this.db
      .updateTable("channel_deliveries")
      .set({
        status: final ? "failed" : "pending",
        attempts: attempt,
        last_error: error,
        claimed_until: sql<Date>`now() + ${claimMs} * interval '1 millisecond'`,
      })
      .where("id", "=", deliveryId)
      .execute();
    if (final || this.stopped) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      this.track(this.attempt(channel, deliveryId, type, body, attempt + 1));
    }, delayMs);
    this.timers.add(timer);
  }

  /**
   * Claims pending deliveries whose claim lapsed (the replica sending them died) and sends
   * them from here; SKIP LOCKED keeps two replicas from taking the same row.
   */
  async takeOver(limit = 20): Promise<number> {
    if (this.stopped) return 0;
    const claimMs = this.options.timeoutMs + CLAIM_MARGIN_MS;
    const rows = await sql<{
      id: string;
      channel_id: string;
      event_type: string;
      body: string;
      attempts: number;
    }>`
      UPDATE channel_deliveries SET claimed_until = now() + ${claimMs} * interval '1 millisecond'
      WHERE id IN (SELECT id FROM channel_deliveries
        WHERE status = 'pending' AND body IS NOT NULL AND claimed_until < now()
        ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
      RETURNING id, channel_id, event_type, body, attempts`.execute(this.db);
    for (const row of rows.rows) {
      const channel = await this.db
        .selectFrom("channels")
        .selectAll()
        .where("id", "=", row.channel_id)
        .where("enabled", "=", true)
        .executeTakeFirst();
      if (!channel) {
        await this.db
          .updateTable("channel_deliveries")
          .set({ status: "failed", last_error: "the channel was disabled" })
          .where("id", "=", row.id)
          .execute();
        continue;
      }
      this.logger.info("webhook delivery taken over", { delivery: row.id });
      this.track(this.attempt(channel, row.id, row.event_type, row.body, row.attempts + 1));
    }
    return rows.rows.length;
  }

  /** Stops retrying and waits for deliveries already on the wire. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }
}
