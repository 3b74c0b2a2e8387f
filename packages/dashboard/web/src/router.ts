/**
 * Hash routes (`/#/sandboxes/sbx_1`): the control plane's own paths (`/v1`, the E2B API at
 * `/sandboxes`, `/templates`, …) stay the API's, and any dashboard link works on reload.
 */
import { useEffect, useState } from "preact/hooks";

export interface Route {
  /** The path after `#`, without its query: `/sandboxes/sbx_1`. */
  path: string;
  query: URLSearchParams;
}

function current(): Route {
  const raw = window.location.hash.replace(/^#/, "") || "/";
  const [path = "/", query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const onChange = () => setRoute(current());
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

export function navigate(path: string): void {
  window.location.hash = path;
}

/** `href` for a dashboard path. */
export const href = (path: string): string => `#${path}`;

/** Matches `/sandboxes/:id` against a path; the params (decoded) or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const want = pattern.split("/");
  const got = path.split("/");
  if (want.length !== got.length) return null;
  const params: Record<string, string> = {};
  for (const [i, w] of want.entries()) {
    const g = got[i] ?? "";
    if (w.startsWith(":")) {
      if (!g) return null;
      params[w.slice(1)] = decodeURIComponent(g);
    } else if (w !== g) return null;
  }
  return params;
}
