import type { EventBus, WrennEvent } from "../events/event-bus.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";

/** A comment line this often keeps idle proxies from closing the stream. */
const KEEPALIVE_MS = 15_000;

/** The open event streams, ended when the control plane stops (else its listener never closes). */
export class EventStreams {
  private readonly open = new Set<() => void>();

  add(end: () => void): () => void {
    this.open.add(end);
    return () => this.open.delete(end);
  }

  closeAll(): void {
    for (const end of [...this.open]) end();
  }
}

const frame = (e: WrennEvent): string =>
  `id: ${e.id}\ndata: ${JSON.stringify({ id: e.id, type: e.type, created_at: e.createdAt, data: e.data })}\n\n`;

/**
 * `GET /v1/events`: the caller's team's events as server-sent events, live (the dashboard's
 * sandbox list follows it). Each `data:` is `{"id","type","created_at","data"}`, the same
 * events webhooks deliver, whichever replica published them. Nothing is replayed: a client that reconnects reloads what it shows.
 */
export function eventRoutes(bus: EventBus, streams: EventStreams): AnyRouteSpec[] {
  return [
    defineRoute({
      method: "GET",
      path: "/v1/events",
      summary: "The team's events as they happen (text/event-stream; nothing replayed)",
      tag: "Events",
      auth: "api_key",
      responses: { 200: { description: "An event stream: `data: {id, type, created_at, data}` per event" } },
      handler: async (ctx) => {
        const teamId = ctx.principal.teamId;
        const { request, reply } = ctx;
        reply.hijack();
        const res = reply.raw;
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache, no-transform",
          "x-request-id": request.id,
          "x-accel-buffering": "no",
        });
        res.write("retry: 3000\n: connected\n\n");
        const unsubscribe = bus.subscribeAll((event) => {
          if (event.teamId === teamId) res.write(frame(event));
        });
        const keepalive = setInterval(() => res.write(": keepalive\n\n"), KEEPALIVE_MS);
        let forget = () => {};
        const end = () => {
          clearInterval(keepalive);
          unsubscribe();
          forget();
          if (!res.writableEnded) res.end();
        };
        forget = streams.add(end);
        request.raw.once("close", end);
        return reply;
      },
    }),
  ];
}
