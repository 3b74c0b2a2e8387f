import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { ProcessEventSchema } from "@wrenn/proto";
import type { ProcessStreamEvent, ProcessSubscription } from "./managed-process.js";

type ProcessEventInit = MessageInitShape<typeof ProcessEventSchema>;

/** Both Start and Connect answer with `{ event }` messages. */
export interface ProcessStreamMessage {
  event: ProcessEventInit;
}

/** Header the e2b SDK sets on Start and Connect: the keepalive interval in seconds. */
const KEEPALIVE_HEADER = "keepalive-ping-interval";

/** The client's keepalive interval if it sent a usable one, else envd's. */
export function keepaliveIntervalMs(hctx: HandlerContext, fallbackMs: number): number {
  const raw = hctx.requestHeader.get(KEEPALIVE_HEADER);
  const seconds = raw === null ? Number.NaN : Number(raw);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : fallbackMs;
}

function toMessage(event: ProcessStreamEvent): ProcessStreamMessage {
  if (event.kind === "data") {
    return {
      event: { event: { case: "data", value: { output: { case: event.output, value: event.data } } } },
    };
  }
  const { exitCode, exited, status, error } = event.exit;
  return {
    event: {
      event: { case: "end", value: { exitCode, exited, status, ...(error !== undefined ? { error } : {}) } },
    },
  };
}

/**
 * One Start or Connect stream: the start event, then output in order, a keepalive after
 * each quiet interval, and the end. The stream ending early (client gone, deadline) only
 * unsubscribes: the process keeps running, as in E2B's envd.
 */
export async function* followProcess(
  pid: number,
  subscription: ProcessSubscription,
  hctx: HandlerContext,
  keepaliveMs: number,
): AsyncGenerator<ProcessStreamMessage> {
  try {
    yield { event: { event: { case: "start", value: { pid } } } };
    for (;;) {
      const read = await subscription.queue.next(keepaliveMs, hctx.signal);
      if (read.kind === "idle") {
        yield { event: { event: { case: "keepalive", value: {} } } };
        continue;
      }
      if (read.kind === "end") break;
      yield toMessage(read.item);
      if (read.item.kind === "end") return;
    }
    // Aborted: report why (a deadline reaches the client as deadline_exceeded).
    if (hctx.signal.aborted) throw ConnectError.from(hctx.signal.reason, Code.Canceled);
  } finally {
    subscription.unsubscribe();
  }
}
