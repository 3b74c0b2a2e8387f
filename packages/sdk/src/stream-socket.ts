import {
  type ExecInputMessage,
  type ExecStartMessage,
  type PtyInputMessage,
  type PtyStartMessage,
  type StreamAuthMessage,
  StreamErrorMessageSchema,
} from "@wrenn/api";
import { HTTP_STATUS_BY_CODE, isErrorCode } from "@wrenn/shared/errors";
import { WrennApiError, WrennConnectionError } from "./errors.js";

/** The slice of the WHATWG WebSocket both `globalThis.WebSocket` and the `ws` package provide. */
interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: () => void): void;
  addEventListener(type: "message", listener: (ev: { data: unknown }) => void): void;
  addEventListener(type: "close", listener: (ev: { code: number; reason: string }) => void): void;
  addEventListener(type: "error", listener: (ev: unknown) => void): void;
}

type SocketConstructor = new (url: string) => SocketLike;

/** The platform's WebSocket (Node ≥ 22, browsers, Deno, Bun), else the `ws` package (Node 20). */
async function socketConstructor(): Promise<SocketConstructor> {
  const native = (globalThis as { WebSocket?: SocketConstructor }).WebSocket;
  if (native) return native;
  const ws = await import("ws");
  return ws.WebSocket as unknown as SocketConstructor;
}

/**
 * One JSON-message WebSocket to the control plane's stream endpoints. Authenticates with the
 * first message (works with every WebSocket implementation: browsers cannot set headers),
 * then sends `start`. Server `error` messages become WrennApiErrors; a socket that fails
 * or closes early becomes a WrennConnectionError.
 */
export class StreamSocket {
  readonly #socket: SocketLike;
  readonly #path: string;
  /** Resolves when the socket closes; rejects with the stream's error, if any. */
  readonly done: Promise<void>;

  private constructor(socket: SocketLike, path: string, done: Promise<void>) {
    this.#socket = socket;
    this.#path = path;
    this.done = done;
  }

  static async open(input: {
    url: string;
    path: string;
    apiKey: string;
    start: ExecStartMessage | PtyStartMessage;
    /** Every server message but `error`, parsed from JSON and not yet validated. */
    onMessage: (msg: unknown) => void;
  }): Promise<StreamSocket> {
    const Ctor = await socketConstructor();
    const socket = new Ctor(input.url);
    let opened = false;
    let failure: Error | undefined;
    const done = new Promise<void>((resolve, reject) => {
      socket.addEventListener("open", () => {
        opened = true;
        socket.send(JSON.stringify({ type: "auth", api_key: input.apiKey } satisfies StreamAuthMessage));
        socket.send(JSON.stringify(input.start));
      });
      socket.addEventListener("message", (ev) => {
        let msg: unknown;
        try {
          msg = JSON.parse(typeof ev.data === "string" ? ev.data : String(ev.data));
        } catch {
          return;
        }
        const error = StreamErrorMessageSchema.safeParse(msg);
        if (error.success) {
          const { code, message } = error.data;
          failure = new WrennApiError({
            code,
            status: isErrorCode(code) ? HTTP_STATUS_BY_CODE[code] : 500,
            message,
            method: "GET",
            path: input.path,
          });
          return;
        }
        input.onMessage(msg);
      });
      socket.addEventListener("error", (ev) => {
        const detail =
          (ev as { message?: string; error?: Error }).error?.message ?? (ev as { message?: string }).message;
        failure ??= new WrennConnectionError({
          url: input.url,
          timedOut: false,
          message: `${opened ? "lost" : "cannot open"} the stream ${input.path}${detail ? `: ${detail}` : ""}`,
          cause: ev,
        });
      });
      socket.addEventListener("close", () => (failure ? reject(failure) : resolve()));
    });
    // Callers await `done` (or a promise chained to it); this keeps an unobserved failure quiet.
    done.catch(() => undefined);
    return new StreamSocket(socket, input.path, done);
  }

  send(msg: ExecInputMessage | PtyInputMessage): void {
    if (this.#socket.readyState !== 1) {
      throw new WrennConnectionError({
        url: this.#path,
        timedOut: false,
        message: `the stream ${this.#path} is not open`,
      });
    }
    this.#socket.send(JSON.stringify(msg));
  }

  close(): void {
    this.#socket.close(1000, "client done");
  }
}
