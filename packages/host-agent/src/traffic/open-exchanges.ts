import { WRENN_ERROR_CODE_HEADER } from "@wrenn/shared";

/**
 * Exchanges the traffic hop has open with each sandbox, so they can be ended when the
 * sandbox stops running (paused, destroyed): its VM is gone without closing a single
 * connection, and a relayed stream (a command's output, a terminal) would wait forever.
 */

/** Why an exchange is cut: the Connect error a cut stream ends with. */
export interface StopReason {
  code: "unknown" | "unavailable";
  message: string;
  /** What Wrenn's own clients (the guest client) should make of it: the hop's error code. */
  wrennCode?: "not_found" | "unavailable";
}

/** One relayed exchange: where it goes, and how to end it with a reason. */
export interface OpenExchange {
  address: string;
  cut(reason: StopReason): void;
}

/**
 * The reason for a sandbox in `state` (undefined: the agent no longer has it). A sandbox
 * that is gone (killed, or ended by its timeout) ends streams as a dropped connection
 * does in E2B: code unknown with "terminated" in the message, on which the e2b SDK checks
 * the sandbox's health, finds it gone (502) and throws its TimeoutError saying the sandbox
 * was killed or reached its end of life while the request was in flight.
 */
export function stopReason(sandboxId: string, state: string | undefined): StopReason {
  if (state === undefined || state === "stopped")
    return {
      code: "unknown",
      message: `sandbox ${sandboxId} was killed or timed out; the connection to it was terminated`,
      wrennCode: "not_found",
    };
  if (state === "paused" || state === "pausing")
    return { code: "unavailable", message: `sandbox ${sandboxId} was paused` };
  if (state === "error")
    return { code: "unavailable", message: `sandbox ${sandboxId} stopped: its VM exited` };
  return { code: "unavailable", message: `sandbox ${sandboxId} stopped running here (state ${state})` };
}

export class OpenExchanges {
  private readonly bySandbox = new Map<string, Set<OpenExchange>>();
  private readonly checking = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param addressOf where a sandbox's ports answer now (after any lifecycle operation under
   *   way), undefined when it is not running
   * @param stateOf the sandbox's state on this host (undefined when it has none), to say why
   */
  constructor(
    private readonly addressOf: (sandboxId: string) => Promise<string | undefined>,
    private readonly intervalMs = 1000,
    private readonly stateOf: (sandboxId: string) => string | undefined = () => undefined,
  ) {}

  /** Tracks an exchange until the returned function is called. */
  add(sandboxId: string, exchange: OpenExchange): () => void {
    let set = this.bySandbox.get(sandboxId);
    if (!set) {
      set = new Set();
      this.bySandbox.set(sandboxId, set);
    }
    set.add(exchange);
    this.timer ??= setInterval(() => this.checkAll(), this.intervalMs).unref();
    return () => {
      set.delete(exchange);
      if (set.size === 0 && this.bySandbox.get(sandboxId) === set) this.bySandbox.delete(sandboxId);
      if (this.bySandbox.size === 0) this.stop();
    };
  }

  close(): void {
    this.stop();
    this.bySandbox.clear();
  }

  private stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private checkAll(): void {
    for (const sandboxId of this.bySandbox.keys()) {
      if (this.checking.has(sandboxId)) continue;
      this.checking.add(sandboxId);
      this.addressOf(sandboxId)
        .then((address) => {
          const cut = [...(this.bySandbox.get(sandboxId) ?? [])].filter((e) => e.address !== address);
          if (cut.length === 0) return;
          const reason = stopReason(sandboxId, this.stateOf(sandboxId));
          for (const exchange of cut) exchange.cut(reason);
        })
        .catch(() => {})
        .finally(() => this.checking.delete(sandboxId));
    }
  }
}

/**
 * Follows the envelopes of a Connect streaming response (1 flag byte, 4 length bytes,
 * the message) so the hop knows when the bytes relayed so far end on a message boundary.
 */
export class EnvelopeBoundary {
  private headerBytes: number[] = [];
  private payloadLeft = 0;

  observe(chunk: Uint8Array): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.payloadLeft > 0) {
        const take = Math.min(this.payloadLeft, chunk.length - i);
        this.payloadLeft -= take;
        i += take;
        continue;
      }
      this.headerBytes.push(chunk[i] ?? 0);
      i++;
      if (this.headerBytes.length === 5) {
        const [, a = 0, b = 0, c = 0, d = 0] = this.headerBytes;
        this.payloadLeft = ((a << 24) >>> 0) + (b << 16) + (c << 8) + d;
        this.headerBytes = [];
      }
    }
  }

  atBoundary(): boolean {
    return this.headerBytes.length === 0 && this.payloadLeft === 0;
  }
}

/**
 * A Connect end-of-stream message carrying an error (always JSON, whatever the codec); the
 * hop's own error code rides in its metadata (`wrenn-error-code`), as on the hop's refusals.
 */
export function endStreamWithError(code: string, message: string, wrennCode?: string): Buffer {
  const payload = Buffer.from(
    JSON.stringify({
      error: { code, message },
      ...(wrennCode ? { metadata: { [WRENN_ERROR_CODE_HEADER]: [wrennCode] } } : {}),
    }),
  );
  const header = Buffer.alloc(5);
  header.writeUInt8(0x02, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Whether a response's content type is a Connect stream. */
export function isConnectStream(contentType: string | undefined): boolean {
  return (contentType ?? "").startsWith("application/connect+");
}
