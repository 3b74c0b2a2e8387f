import type { ApiResponse } from "./cp-fixture.js";

/**
 * A browser's view of the API: keeps the session cookie the server sets, sends it back,
 * and sends the CSRF token and its own Origin on state changes the way the dashboard will.
 */
export class Browser {
  cookie: string | null = null;
  csrfToken: string | null = null;
  lastSetCookie: string | null = null;

  constructor(
    readonly url: string,
    /** The Origin this browser's page has (the server's own by default). */
    readonly origin: string = url,
  ) {}

  async call<T = Record<string, unknown>>(
    method: string,
    path: string,
    body?: unknown,
    options: { csrf?: boolean; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse<T>> {
    const stateChanging = method !== "GET";
    const headers: Record<string, string> = {
      ...(this.cookie ? { cookie: this.cookie } : {}),
      ...(body !== undefined ? { "content-type": "application/json" } : {}),
      ...(stateChanging ? { origin: this.origin } : {}),
      ...((options.csrf ?? true) && stateChanging && this.csrfToken
        ? { "x-csrf-token": this.csrfToken }
        : {}),
      ...options.headers,
    };
    const res = await fetch(`${this.url}${path}`, {
      method,
      // An empty value drops a header (a test's way to send no Origin).
      headers: Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== "")),
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith("wrenn_session="));
    if (setCookie) {
      this.lastSetCookie = setCookie;
      const value = setCookie.split(";")[0] ?? "";
      this.cookie = value === "wrenn_session=" ? null : value;
    }
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as T) : (null as T);
    const token = (parsed as { csrfToken?: unknown } | null)?.csrfToken;
    if (res.ok && typeof token === "string") this.csrfToken = token;
    return { status: res.status, body: parsed, headers: res.headers };
  }

  async signup(email: string, password = "correct horse battery"): Promise<ApiResponse<SessionBody>> {
    return this.call<SessionBody>("POST", "/v1/auth/signup", { email, password });
  }

  async signin(email: string, password = "correct horse battery"): Promise<ApiResponse<SessionBody>> {
    return this.call<SessionBody>("POST", "/v1/auth/signin", { email, password });
  }
}

export interface SessionBody {
  user: { id: string; email: string };
  team: { id: string; name: string; role: string };
  role: string;
  teams: { id: string; role: string }[];
  csrfToken: string;
  error?: { code: string; message: string };
}
