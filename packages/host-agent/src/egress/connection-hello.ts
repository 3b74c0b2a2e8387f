/**
 * What a guest's proxied connection asks for, read from its first bytes without consuming
 * them: the TLS ClientHello's server_name (RFC 6066 §3) or the HTTP/1.x Host header. The
 * proxy forwards the bytes it read unchanged once it has decided.
 */
export type ConnectionHello =
  /** Not enough bytes yet to decide. */
  | { kind: "more" }
  /** A TLS ClientHello; `name` is its SNI host name, absent when it sent none. */
  | { kind: "tls"; name: string | undefined }
  /** An HTTP/1.x request head; `name` is its Host (without port), absent when it has none. */
  | { kind: "http"; name: string | undefined }
  /** Neither (or malformed, or over the size bound): the connection is refused. */
  | { kind: "invalid" };

/** Most bytes read before deciding: a ClientHello record is at most 16 KiB + header. */
export const MAX_HELLO_BYTES = 16_384 + 5;
const MAX_HTTP_HEAD_BYTES = 8_192;

const TLS_HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
const HOST_NAME = /^[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?$/;

/** Reads the hello from the bytes received so far. */
export function parseConnectionHello(buf: Uint8Array): ConnectionHello {
  if (buf.length === 0) return { kind: "more" };
  if (buf[0] === TLS_HANDSHAKE) return parseTls(buf);
  return parseHttp(buf);
}

function u16(buf: Uint8Array, at: number): number {
  return ((buf[at] ?? 0) << 8) | (buf[at + 1] ?? 0);
}

function u24(buf: Uint8Array, at: number): number {
  return ((buf[at] ?? 0) << 16) | ((buf[at + 1] ?? 0) << 8) | (buf[at + 2] ?? 0);
}

function cleanName(raw: string): string | undefined {
  const name = raw.toLowerCase().replace(/\.$/, "");
  return HOST_NAME.test(name) && !name.includes("..") ? name : undefined;
}

/**
 * The SNI of a ClientHello that fits in the first TLS record (every client's does: the record
 * limit is 16 KiB). A hello split over records is refused rather than reassembled.
 */
function parseTls(buf: Uint8Array): ConnectionHello {
  if (buf.length < 5) return { kind: "more" };
  if (buf[1] !== 0x03) return { kind: "invalid" };
  const recordLen = u16(buf, 3);
  if (recordLen > 16_384 || recordLen < 4) return { kind: "invalid" };
  if (buf.length < 5 + recordLen) return { kind: "more" };
  const end = 5 + recordLen;
  let at = 5;
  if (buf[at] !== CLIENT_HELLO) return { kind: "invalid" };
  const helloLen = u24(buf, at + 1);
  at += 4;
  if (at + helloLen > end) return { kind: "invalid" };
  const helloEnd = at + helloLen;
  at += 2 + 32; // client_version, random
  const skip = (lenBytes: 1 | 2): boolean => {
    if (at + lenBytes > helloEnd) return false;
    const len = lenBytes === 1 ? (buf[at] ?? 0) : u16(buf, at);
    at += lenBytes + len;
    return at <= helloEnd;
  };
  // session_id, cipher_suites, compression_methods
  if (!skip(1) || !skip(2) || !skip(1)) return { kind: "invalid" };
  if (at === helloEnd) return { kind: "tls", name: undefined }; // no extensions
  if (at + 2 > helloEnd) return { kind: "invalid" };
  const extEnd = at + 2 + u16(buf, at);
  at += 2;
  if (extEnd > helloEnd) return { kind: "invalid" };
  while (at + 4 <= extEnd) {
    const type = u16(buf, at);
    const len = u16(buf, at + 2);
    at += 4;
    if (at + len > extEnd) return { kind: "invalid" };
    if (type === EXT_SERVER_NAME) return { kind: "tls", name: serverName(buf.subarray(at, at + len)) };
    at += len;
  }
  return { kind: "tls", name: undefined };
}

/** The host_name entry of a server_name extension's body; undefined when it has none or is bad. */
function serverName(ext: Uint8Array): string | undefined {
  if (ext.length < 2) return undefined;
  const listEnd = Math.min(ext.length, 2 + u16(ext, 0));
  let at = 2;
  while (at + 3 <= listEnd) {
    const type = ext[at];
    const len = u16(ext, at + 1);
    at += 3;
    if (at + len > listEnd) return undefined;
    if (type === 0) return cleanName(Buffer.from(ext.subarray(at, at + len)).toString("latin1"));
    at += len;
  }
  return undefined;
}

const REQUEST_LINE = /^[A-Z]{3,10} \S+ HTTP\/1\.[01]$/;

/** The Host header of an HTTP/1.x request head (the whole head must have arrived). */
function parseHttp(buf: Uint8Array): ConnectionHello {
  const text = Buffer.from(buf.subarray(0, MAX_HTTP_HEAD_BYTES)).toString("latin1");
  const firstLineEnd = text.indexOf("\r\n");
  // Decide early on a first line that cannot be HTTP, so garbage is refused at once.
  const firstLine = firstLineEnd === -1 ? text : text.slice(0, firstLineEnd);
  if (!/^[A-Z]{0,10}( |$)/.test(firstLine)) return { kind: "invalid" };
  const headEnd = text.indexOf("\r\n\r\n");
  if (headEnd === -1) return buf.length >= MAX_HTTP_HEAD_BYTES ? { kind: "invalid" } : { kind: "more" };
  if (!REQUEST_LINE.test(firstLine)) return { kind: "invalid" };
  const hosts = text
    .slice(firstLineEnd + 2, headEnd)
    .split("\r\n")
    .filter((l) => /^host\s*:/i.test(l))
    .map((l) => l.slice(l.indexOf(":") + 1).trim());
  // Two Host headers are a smuggling attempt (RFC 9112 §3.2 says reject).
  if (hosts.length !== 1) return { kind: "http", name: undefined };
  const host = hosts[0] as string;
  const withoutPort = /^([^:[\]]+)(?::\d{1,5})?$/.exec(host)?.[1];
  return { kind: "http", name: withoutPort === undefined ? undefined : cleanName(withoutPort) };
}
