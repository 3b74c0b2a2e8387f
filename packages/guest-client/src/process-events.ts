import type { ProcessEvent } from "@wrenn/proto";

/** One event of a guest process's life. */
export type ProcessStreamEvent =
  | { kind: "started"; pid: number }
  | { kind: "stdout"; data: Uint8Array }
  | { kind: "stderr"; data: Uint8Array }
  | { kind: "pty"; data: Uint8Array }
  | { kind: "exited"; exitCode: number; error: string | undefined };

/** envd's event as a ProcessStreamEvent; keepalives and unknown events are undefined. */
export function toStreamEvent(event: ProcessEvent | undefined): ProcessStreamEvent | undefined {
  const e = event?.event;
  switch (e?.case) {
    case "start":
      return { kind: "started", pid: e.value.pid };
    case "data": {
      const out = e.value.output;
      if (out.case === "stdout") return { kind: "stdout", data: out.value };
      if (out.case === "stderr") return { kind: "stderr", data: out.value };
      if (out.case === "pty") return { kind: "pty", data: out.value };
      return undefined;
    }
    case "end":
      return {
        kind: "exited",
        exitCode: e.value.exitCode,
        error: e.value.error ?? (e.value.exited ? undefined : e.value.status || undefined),
      };
    default:
      return undefined;
  }
}

export function concatBytes(chunks: Uint8Array[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.byteLength;
  }
  return out;
}
