import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { isAnswerTo, takeTcpFrames, tcpFrame } from "./dns-message.js";
import type { Upstream } from "./upstreams.js";

/** Why one upstream gave no answer. */
export type UpstreamFailure = "timeout" | "unreachable" | "aborted";

export type UpstreamResult =
  | { ok: true; answer: Buffer }
  | { ok: false; failure: UpstreamFailure; detail?: string };

/**
 * Asks one upstream over UDP from a fresh socket (a random source port per query, so an
 * off-path attacker must guess it as well as the id). The socket is connected, so the kernel
 * drops datagrams from anyone but the upstream and reports its ICMP port-unreachable.
 */
export function queryUdp(
  upstream: Upstream,
  query: Uint8Array,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<UpstreamResult> {
  return new Promise((resolve) => {
    const socket = createSocket(upstream.family === 6 ? "udp6" : "udp4");
    let done = false;
    const finish = (r: UpstreamResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const onAbort = () => finish({ ok: false, failure: "aborted" });
    const timer = setTimeout(() => finish({ ok: false, failure: "timeout" }), timeoutMs);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort);
    socket.on("error", (err) => finish({ ok: false, failure: "unreachable", detail: err.message }));
    socket.on("message", (msg) => {
      // A stray datagram with another id is ignored; the real answer may still come.
      if (isAnswerTo(query, msg)) finish({ ok: true, answer: msg });
    });
    socket.connect(upstream.port, upstream.host, () => socket.send(query));
  });
}

/** Asks one upstream over TCP: one connection per query, closed after the answer. */
export function queryTcp(
  upstream: Upstream,
  query: Uint8Array,
  timeoutMs: number,
  signal: AbortSignal,
): Promise<UpstreamResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: upstream.host, port: upstream.port, family: upstream.family });
    let buffer: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (r: UpstreamResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      socket.destroy();
      resolve(r);
    };
    const onAbort = () => finish({ ok: false, failure: "aborted" });
    const timer = setTimeout(() => finish({ ok: false, failure: "timeout" }), timeoutMs);
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort);
    socket.on("connect", () => socket.write(tcpFrame(query)));
    socket.on("error", (err) => finish({ ok: false, failure: "unreachable", detail: err.message }));
    socket.on("close", () => finish({ ok: false, failure: "unreachable", detail: "connection closed" }));
    socket.on("data", (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const { messages, rest } = takeTcpFrames(buffer);
      buffer = rest;
      const answer = messages.find((m) => isAnswerTo(query, m));
      if (answer) finish({ ok: true, answer: Buffer.from(answer) });
    });
  });
}
