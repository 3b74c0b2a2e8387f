/**
 * One terminal session over `GET /v1/sandboxes/{id}/pty/ws`. The browser's session cookie
 * authenticates the upgrade (same origin). Protocol: send `start` with the size, wait for
 * `started`, then keystrokes (`input`) and sizes (`resize`), base64 in `data`; the server sends
 * `data` until `exit` or `error`, then closes.
 */
import type { PtyInputMessage, PtyServerMessage, PtyStartMessage } from "@wrenn/api";

export type PtyStatus =
  | { kind: "connecting" }
  | { kind: "started"; pid: number }
  | { kind: "exited"; exitCode: number; error?: string | undefined }
  | { kind: "failed"; code: string; message: string }
  | { kind: "closed" };

export interface PtyHandlers {
  onOutput: (bytes: Uint8Array) => void;
  onStatus: (status: PtyStatus) => void;
}

const utf8 = new TextEncoder();

function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function fromBase64(text: string): Uint8Array {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function ptyUrl(sandboxId: string): string {
  const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${window.location.host}/v1/sandboxes/${encodeURIComponent(sandboxId)}/pty/ws`;
}

export class PtySocket {
  private readonly ws: WebSocket;
  private started = false;
  /** Typed before the terminal started (the server refuses input until then): sent once it has. */
  private readonly pending: PtyInputMessage[] = [];
  /** Set once the stream said how it ended, so the close that follows does not overwrite it. */
  private ended = false;

  constructor(sandboxId: string, size: { cols: number; rows: number }, on: PtyHandlers) {
    this.ws = new WebSocket(ptyUrl(sandboxId));
    on.onStatus({ kind: "connecting" });
    this.ws.addEventListener("open", () => {
      const start: PtyStartMessage = { type: "start", cols: size.cols, rows: size.rows };
      this.ws.send(JSON.stringify(start));
    });
    this.ws.addEventListener("message", (e: MessageEvent) => {
      if (typeof e.data !== "string") return;
      let msg: PtyServerMessage;
      try {
        msg = JSON.parse(e.data) as PtyServerMessage;
      } catch {
        return;
      }
      if (msg.type === "data") on.onOutput(fromBase64(msg.data));
      else if (msg.type === "started") {
        this.started = true;
        on.onStatus({ kind: "started", pid: msg.pid });
        for (const queued of this.pending.splice(0)) this.send(queued);
      } else if (msg.type === "exit") {
        this.ended = true;
        on.onStatus({ kind: "exited", exitCode: msg.exit_code, error: msg.error });
      } else if (msg.type === "error") {
        this.ended = true;
        on.onStatus({ kind: "failed", code: msg.code, message: msg.message });
      }
    });
    this.ws.addEventListener("close", () => {
      this.started = false;
      if (!this.ended) on.onStatus({ kind: "closed" });
    });
  }

  /** Keystrokes (xterm's onData: a JS string) or raw bytes (onBinary: one char per byte). */
  input(data: string, binary = false): void {
    const bytes = binary ? Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff) : utf8.encode(data);
    this.send({ type: "input", data: toBase64(bytes) });
  }

  resize(cols: number, rows: number): void {
    this.send({ type: "resize", cols, rows });
  }

  close(): void {
    this.ended = true;
    this.ws.close(1000, "closed by the page");
  }

  private send(msg: PtyInputMessage): void {
    if (this.ended || this.ws.readyState > WebSocket.OPEN) return;
    if (this.started) this.ws.send(JSON.stringify(msg));
    else this.pending.push(msg);
  }
}
