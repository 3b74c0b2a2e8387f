import { type PtyInputMessage, PtyServerMessageSchema, type PtyStartMessage } from "@wrenn/api";
import { type ApiClient, apiPath } from "./api-client.js";
import { base64ToBytes, bytesToBase64, toBytes } from "./bytes.js";
import { WrennConnectionError } from "./errors.js";
import type { StreamSocket } from "./stream-socket.js";

export interface PtySize {
  cols: number;
  rows: number;
}

export interface PtyOptions extends Partial<PtySize> {
  /** Called with the terminal's output (bytes, as a terminal emits them). */
  onData: (data: Uint8Array) => void;
  /** Program to run (default: the user's login shell). */
  cmd?: string;
  envs?: Record<string, string>;
  cwd?: string;
  user?: string;
}

export interface PtyExit {
  exitCode: number;
  error: string | null;
}

/** An interactive terminal in a sandbox, over the control plane's `…/pty/ws` stream. */
export class PtyHandle {
  readonly pid: number;
  readonly #socket: StreamSocket;
  readonly #exit: Promise<PtyExit>;

  constructor(pid: number, socket: StreamSocket, exit: Promise<PtyExit>) {
    this.pid = pid;
    this.#socket = socket;
    this.#exit = exit;
  }

  static async open(
    api: ApiClient,
    sandboxId: string,
    start: PtyStartMessage,
    onData: (data: Uint8Array) => void,
  ): Promise<PtyHandle> {
    const path = apiPath("sandboxes", sandboxId, "pty", "ws");
    let pid = 0;
    let exit: PtyExit | undefined;
    let onStarted: () => void = () => undefined;
    const started = new Promise<void>((resolve) => {
      onStarted = resolve;
    });
    const socket = await api.openStream(path, start, (raw) => {
      const parsed = PtyServerMessageSchema.safeParse(raw);
      if (!parsed.success) return;
      const msg = parsed.data;
      if (msg.type === "started") {
        pid = msg.pid;
        onStarted();
      } else if (msg.type === "data") {
        onData(base64ToBytes(msg.data));
      } else if (msg.type === "exit") {
        exit = { exitCode: msg.exit_code, error: msg.error ?? null };
      }
    });
    const ended = socket.done.then((): PtyExit => {
      if (!exit) {
        throw new WrennConnectionError({
          url: path,
          timedOut: false,
          message: "the terminal stream closed before the terminal exited",
        });
      }
      return exit;
    });
    ended.catch(() => undefined);
    await Promise.race([started, ended]);
    return new PtyHandle(pid, socket, ended);
  }

  /** Sends keystrokes or pasted text. */
  sendInput(data: string | Uint8Array): void {
    this.#socket.send({ type: "input", data: bytesToBase64(toBytes(data)) } satisfies PtyInputMessage);
  }

  resize(size: PtySize): void {
    this.#socket.send({ type: "resize", cols: size.cols, rows: size.rows } satisfies PtyInputMessage);
  }

  kill(): void {
    this.#socket.send({ type: "kill" } satisfies PtyInputMessage);
  }

  /** Resolves when the terminal's process exits. */
  wait(): Promise<PtyExit> {
    return this.#exit;
  }

  /** Detaches (the terminal keeps running; attach again with `pty.connect(pid)`). */
  disconnect(): void {
    this.#socket.close();
  }
}

/** Terminals in one sandbox. */
export class Pty {
  readonly #api: ApiClient;
  readonly #sandboxId: string;

  constructor(api: ApiClient, sandboxId: string) {
    this.#api = api;
    this.#sandboxId = sandboxId;
  }

  /** Starts a terminal (80×24 unless given). */
  create(options: PtyOptions): Promise<PtyHandle> {
    return PtyHandle.open(
      this.#api,
      this.#sandboxId,
      {
        type: "start",
        cols: options.cols ?? 80,
        rows: options.rows ?? 24,
        command: options.cmd,
        envs: options.envs,
        cwd: options.cwd,
        user: options.user,
      },
      options.onData,
    );
  }

  /** Attaches to a running terminal by pid. */
  connect(pid: number, options: Pick<PtyOptions, "onData" | "cols" | "rows">): Promise<PtyHandle> {
    return PtyHandle.open(
      this.#api,
      this.#sandboxId,
      { type: "start", pid, cols: options.cols ?? 80, rows: options.rows ?? 24 },
      options.onData,
    );
  }
}
