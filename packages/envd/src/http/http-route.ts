import type { IncomingMessage, ServerResponse } from "node:http";
import type { EnvdContext } from "../context.js";

/** A plain-HTTP endpoint served beside the Connect services. */
export interface HttpRoute {
  method: "GET" | "POST" | "PUT" | "DELETE";
  path: string;
  /** Routes that answer without the access token (only /health). */
  public?: boolean;
  handle(req: IncomingMessage, res: ServerResponse, url: URL, ctx: EnvdContext): Promise<void>;
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
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
