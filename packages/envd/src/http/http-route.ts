import type { IncomingMessage, ServerResponse } from "node:http";
import type { EnvdContext } from "../context.js";

/**
 * Who may call a route: `access-token` needs X-Access-Token when one is set (checked by
 * the server before the route runs), `public` is open (/health), `route` checks for
 * itself (/files accepts a signature instead, /init the token in its body).
 */
export type RouteAuth = "access-token" | "public" | "route";

/** A plain-HTTP endpoint served beside the Connect services. */
export interface HttpRoute {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  /** Default `access-token`. */
  auth?: RouteAuth;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, ctx: EnvdContext): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

/** envd's HTTP error body, as the e2b SDK reads it: {"code": <status>, "message": "..."}. */
export function sendError(res: ServerResponse, status: number, message: string): void {
  if (res.headersSent) {
    res.destroy(new Error(message));
    return;
  }
  sendJson(res, status, { code: status, message });
}

/** Thrown by route code to answer with an envd error body; anything else is a 500. */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
