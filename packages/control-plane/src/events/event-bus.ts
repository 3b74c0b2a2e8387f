import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "@wrenn/api";
import type { Logger } from "@wrenn/shared";
import { newEventId } from "../ids.js";

/** The event types are the /v1 contract's: channels subscribe to them by name. */
export const EVENT_TYPES = WEBHOOK_EVENT_TYPES;
export type EventType = WebhookEventType;

export interface WrennEvent {
  id: string;
  type: EventType;
  /** The team the event belongs to; null for platform events (shared hosts). */
  teamId: string | null;
  createdAt: string;
  data: Record<string, unknown>;
}

export type EventListener = (event: WrennEvent) => void;

/**
 * In-process publish/subscribe. Publishing never waits for listeners and a throwing
 * listener never reaches the publisher: the API path stays fast whatever subscribes.
 */
export class EventBus {
  private readonly listeners = new Set<EventListener>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  publish(type: EventType, teamId: string | null, data: Record<string, unknown>): WrennEvent {
    const event: WrennEvent = { id: newEventId(), type, teamId, createdAt: this.now().toISOString(), data };
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error("event listener failed", { err, type });
      }
    }
    return event;
  }
}
