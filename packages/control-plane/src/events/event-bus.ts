import { WEBHOOK_EVENT_TYPES, type WebhookEventType } from "@wrenn/api";
import type { Logger } from "@wrenn/shared";
import { type EventTransport, LocalEventTransport } from "../coordination/event-transport.js";
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
 * Publish/subscribe. `subscribe` hears the events this replica publishes (webhook delivery,
 * so each event is delivered by one replica); `subscribeAll` hears every replica's, through
 * the transport (event streams). Publishing never waits for listeners and a throwing
 * listener never reaches the publisher: the API path stays fast whatever subscribes.
 */
export class EventBus {
  private readonly listeners = new Set<EventListener>();
  private readonly allListeners = new Set<EventListener>();

  constructor(
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
    private readonly transport: EventTransport = new LocalEventTransport(),
  ) {}

  /** Starts hearing other replicas' events (and this one's, through the transport). */
  start(): Promise<void> {
    return this.transport.start((event) => this.notify(this.allListeners, event));
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /** This replica's events, at once. */
  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every replica's events, as the transport delivers them. */
  subscribeAll(listener: EventListener): () => void {
    this.allListeners.add(listener);
    return () => this.allListeners.delete(listener);
  }

  private notify(listeners: Set<EventListener>, event: WrennEvent): void {
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (err) {
        this.logger.error("event listener failed", { err, type: event.type });
      }
    }
  }

  publish(type: EventType, teamId: string | null, data: Record<string, unknown>): WrennEvent {
    const event: WrennEvent = { id: newEventId(), type, teamId, createdAt: this.now().toISOString(), data };
    this.notify(this.listeners, event);
    this.transport.send(event);
    return event;
  }
}
