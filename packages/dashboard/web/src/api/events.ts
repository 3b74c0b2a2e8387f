/**
 * The team's events (`GET /v1/events`, server-sent events) shared by every page: one
 * EventSource for the tab, opened while anything listens. EventSource reconnects by itself;
 * listeners also hear "reconnected" so they can reload what they may have missed.
 */
import { useEffect, useRef } from "preact/hooks";

export interface TeamEvent {
  id: string;
  type: string;
  created_at: string;
  data: Record<string, unknown>;
}

type Listener = (event: TeamEvent | "reconnected") => void;

const listeners = new Set<Listener>();
let source: EventSource | null = null;

function open(): void {
  if (source) return;
  let opened = false;
  source = new EventSource("/v1/events", { withCredentials: true });
  source.addEventListener("open", () => {
    if (opened) for (const l of listeners) l("reconnected");
    opened = true;
  });
  source.addEventListener("message", (msg: MessageEvent<string>) => {
    let event: TeamEvent;
    try {
      event = JSON.parse(msg.data) as TeamEvent;
    } catch {
      return;
    }
    for (const l of listeners) l(event);
  });
}

function close(): void {
  source?.close();
  source = null;
}

/** Calls `onEvent` for each of the team's events whose type starts with one of `prefixes`. */
export function useTeamEvents(prefixes: readonly string[], onEvent: (event: TeamEvent | null) => void): void {
  const latest = useRef(onEvent);
  latest.current = onEvent;
  const key = prefixes.join(",");
  useEffect(() => {
    const wanted = key.split(",");
    const listener: Listener = (event) => {
      if (event === "reconnected") latest.current(null);
      else if (wanted.some((p) => event.type.startsWith(p))) latest.current(event);
    };
    listeners.add(listener);
    open();
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) close();
    };
  }, [key]);
}
