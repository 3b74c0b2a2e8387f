import { useEffect } from "preact/hooks";

/** How often the sandbox pages refresh what events may not cover (metrics, expiry, a missed event). */
export const REFRESH_MS = 10_000;

/** Calls `tick` every `ms` while enabled and the browser tab is visible. */
export function useInterval(tick: () => void, ms: number, enabled = true): void {
  useEffect(() => {
    if (!enabled) return;
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") tick();
    }, ms);
    return () => clearInterval(timer);
  }, [tick, ms, enabled]);
}
