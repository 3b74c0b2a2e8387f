import type { ProcessExit } from "./exit-status.js";
import type { BackendEvents, OutputKind, ProcessBackend } from "./process-backend.js";
import { StreamQueue } from "./stream-queue.js";

/** Output a single stream may have queued before the process is paused. */
const STREAM_HIGH_WATER_BYTES = 1024 * 1024;
/** Bookkeeping weight of an event beyond its payload. */
const EVENT_OVERHEAD_BYTES = 64;

/** The request's view of the process, reported by List. */
export interface ProcessDescription {
  cmd: string;
  args: string[];
  envs: Record<string, string>;
  cwd: string | undefined;
  tag: string | undefined;
}

export type ProcessStreamEvent =
  | { kind: "data"; output: OutputKind; data: Uint8Array }
  | { kind: "end"; exit: ProcessExit };

/** One stream's view of a process: its queue, and how to leave. */
export interface ProcessSubscription {
  readonly queue: StreamQueue<ProcessStreamEvent>;
  unsubscribe(): void;
}

/**
 * One process started by envd, with its output fanned out to any number of streams (the
 * Start stream, later Connect streams). Output nobody is subscribed to is dropped, as in
 * E2B's envd. While any stream is backed up the process's output is paused, so a slow
 * client slows the process down instead of growing envd's memory.
 */
export class ManagedProcess {
  private backend: ProcessBackend | undefined;
  private readonly subscriptions = new Set<StreamQueue<ProcessStreamEvent>>();
  private pressured = new Set<StreamQueue<ProcessStreamEvent>>();
  private exitInfo: ProcessExit | undefined;
  private readonly endListeners: ((exit: ProcessExit) => void)[] = [];

  constructor(readonly description: ProcessDescription) {}

  /**
   * Starts the OS process. Streams may subscribe before this, so that none of the
   * output is missed.
   */
  async launch(start: (events: BackendEvents) => ProcessBackend | Promise<ProcessBackend>): Promise<void> {
    this.backend = await start({
      onData: (output, data) => this.publish({ kind: "data", output, data }),
      onEnd: (exit) => this.finish(exit),
    });
  }

  get pid(): number {
    return this.started().pid;
  }

  get tag(): string | undefined {
    return this.description.tag;
  }

  get isPty(): boolean {
    return this.started().isPty;
  }

  get exit(): ProcessExit | undefined {
    return this.exitInfo;
  }

  /** Calls `listener` once the process has ended and its end was handed to every stream. */
  onEnd(listener: (exit: ProcessExit) => void): void {
    if (this.exitInfo) listener(this.exitInfo);
    else this.endListeners.push(listener);
  }

  subscribe(): ProcessSubscription {
    const queue: StreamQueue<ProcessStreamEvent> = new StreamQueue<ProcessStreamEvent>({
      highWaterBytes: STREAM_HIGH_WATER_BYTES,
      sizeOf: (e) => EVENT_OVERHEAD_BYTES + (e.kind === "data" ? e.data.byteLength : 0),
      onPressure: (pressured) => this.setPressure(queue, pressured),
    });
    if (this.exitInfo) {
      queue.push({ kind: "end", exit: this.exitInfo });
      queue.close();
    } else {
      this.subscriptions.add(queue);
    }
    return {
      queue,
      unsubscribe: () => {
        this.subscriptions.delete(queue);
        // A stream that leaves while backed up must not keep the process paused.
        this.setPressure(queue, false);
      },
    };
  }

  /** SIGKILL and SIGTERM also stop envd waiting for output that children may hold open. */
  signal(signal: "SIGTERM" | "SIGKILL"): void {
    const backend = this.started();
    backend.kill(signal);
    backend.abandonOutput();
  }

  writeStdin(data: Uint8Array): Promise<void> {
    return this.started().writeStdin(data);
  }

  closeStdin(): void {
    this.started().closeStdin();
  }

  writePty(data: Uint8Array): void {
    this.started().writePty(data);
  }

  resize(cols: number, rows: number): void {
    this.started().resize(cols, rows);
  }

  private started(): ProcessBackend {
    if (!this.backend) throw new Error("process not started");
    return this.backend;
  }

  private publish(event: ProcessStreamEvent): void {
    for (const queue of this.subscriptions) queue.push(event);
  }

  private setPressure(queue: StreamQueue<ProcessStreamEvent>, pressured: boolean): void {
    const before = this.pressured.size > 0;
    if (pressured && this.subscriptions.has(queue)) this.pressured.add(queue);
    else this.pressured.delete(queue);
    const after = this.pressured.size > 0;
    if (before === after || !this.backend || this.exitInfo) return;
    if (after) this.backend.pauseOutput();
    else this.backend.resumeOutput();
  }

  private finish(exit: ProcessExit): void {
    if (this.exitInfo) return;
    this.exitInfo = exit;
    for (const queue of this.subscriptions) {
      queue.push({ kind: "end", exit });
      queue.close();
    }
    this.subscriptions.clear();
    this.pressured.clear();
    for (const listener of this.endListeners.splice(0)) listener(exit);
  }
}
