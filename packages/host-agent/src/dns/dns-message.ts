/**
 * The little of the DNS wire format (RFC 1035 §4.1) the forwarder needs: it passes messages
 * through unchanged and only reads the header, and writes its own error answers.
 */

export const DNS_HEADER_BYTES = 12;
/** Largest DNS message (the TCP length prefix is 16 bits). */
export const DNS_MAX_MESSAGE_BYTES = 65_535;

export const RCODE_NOERROR = 0;
export const RCODE_SERVFAIL = 2;
export const RCODE_REFUSED = 5;

const QR = 0x8000;
const OPCODE_MASK = 0x7800;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const RCODE_MASK = 0x000f;

export function messageId(msg: Uint8Array): number {
  return ((msg[0] ?? 0) << 8) | (msg[1] ?? 0);
}

function flags(msg: Uint8Array): number {
  return ((msg[2] ?? 0) << 8) | (msg[3] ?? 0);
}

/** A query this forwarder will handle: a whole header, and not itself a response. */
export function isQuery(msg: Uint8Array): boolean {
  return msg.length >= DNS_HEADER_BYTES && msg.length <= DNS_MAX_MESSAGE_BYTES && (flags(msg) & QR) === 0;
}

/** An upstream's answer to `query`: a response with the query's id. */
export function isAnswerTo(query: Uint8Array, answer: Uint8Array): boolean {
  return (
    answer.length >= DNS_HEADER_BYTES && (flags(answer) & QR) !== 0 && messageId(answer) === messageId(query)
  );
}

export function rcode(msg: Uint8Array): number {
  return flags(msg) & RCODE_MASK;
}

/** The TC bit: the answer did not fit in the UDP datagram; the client retries over TCP. */
export function isTruncated(msg: Uint8Array): boolean {
  return (flags(msg) & TC) !== 0;
}

/**
 * Length of the question section of a query with exactly one question, or undefined when it
 * has another count or cannot be walked (queries carry no compression pointers).
 */
function questionLength(msg: Uint8Array): number | undefined {
  const qdcount = ((msg[4] ?? 0) << 8) | (msg[5] ?? 0);
  if (qdcount !== 1) return undefined;
  let at = DNS_HEADER_BYTES;
  for (;;) {
    const len = msg[at];
    if (len === undefined || len > 63) return undefined;
    at += 1 + len;
    if (len === 0) break;
  }
  at += 4; // QTYPE, QCLASS
  return at <= msg.length ? at - DNS_HEADER_BYTES : undefined;
}

/**
 * The name asked by a query with exactly one question, lower-case without the trailing dot
 * ("" for the root); undefined when it cannot be read.
 */
export function questionName(msg: Uint8Array): string | undefined {
  if (questionLength(msg) === undefined) return undefined;
  const labels: string[] = [];
  let at = DNS_HEADER_BYTES;
  for (;;) {
    const len = msg[at] ?? 0;
    if (len === 0) break;
    const label = Buffer.from(msg.subarray(at + 1, at + 1 + len))
      .toString("latin1")
      .toLowerCase();
    // A label with a dot (or anything but a hostname's characters) would read as other labels.
    if (!/^[a-z0-9_-]+$/.test(label)) return undefined;
    labels.push(label);
    at += 1 + len;
  }
  return labels.join(".");
}

/**
 * The forwarder's own answer to `query` with the given rcode (SERVFAIL, REFUSED): same id,
 * opcode and RD, the question echoed when it can be read, no records.
 */
export function errorAnswer(query: Uint8Array, code: number): Uint8Array {
  const qlen = questionLength(query) ?? 0;
  const out = new Uint8Array(DNS_HEADER_BYTES + qlen);
  const f = QR | (flags(query) & (OPCODE_MASK | RD)) | RA | (code & RCODE_MASK);
  out[0] = query[0] ?? 0;
  out[1] = query[1] ?? 0;
  out[2] = f >> 8;
  out[3] = f & 0xff;
  out[5] = qlen > 0 ? 1 : 0;
  out.set(query.subarray(DNS_HEADER_BYTES, DNS_HEADER_BYTES + qlen), DNS_HEADER_BYTES);
  return out;
}

/** The 2-byte length prefix DNS over TCP puts before each message (RFC 1035 §4.2.2). */
export function tcpFrame(msg: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + msg.length);
  out.writeUInt16BE(msg.length, 0);
  out.set(msg, 2);
  return out;
}

/** Splits whole length-prefixed messages off the front of `buffer`; returns them and the rest. */
export function takeTcpFrames(buffer: Buffer): { messages: Buffer[]; rest: Buffer } {
  const messages: Buffer[] = [];
  let at = 0;
  while (buffer.length - at >= 2) {
    const len = buffer.readUInt16BE(at);
    if (buffer.length - at - 2 < len) break;
    messages.push(buffer.subarray(at + 2, at + 2 + len));
    at += 2 + len;
  }
  return { messages, rest: buffer.subarray(at) };
}
