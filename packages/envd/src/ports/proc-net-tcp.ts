import { endianness } from "node:os";
import { EXTERNAL, type ListenerTable, LOCAL_V4, LOCAL_V6 } from "./listener-table.js";

/*
 * /proc/net/tcp{,6} print each address as the hex of 32-bit words in host byte order
 * (127.0.0.1 is "0100007F" on x86). Addresses are compared as such words, so a line is
 * classified without building a string.
 */

const LITTLE_ENDIAN = endianness() === "LE";
const TCP_LISTEN = 0x0a;
const NEWLINE = 0x0a;
const SPACE = 0x20;
const COLON = 0x3a;

/** The /proc word of the IPv4 address a.b.c.d. */
export function procWordOf(a: number, b: number, c: number, d: number): number {
  return LITTLE_ENDIAN
    ? (a | (b << 8) | (c << 16) | (d << 24)) >>> 0
    : ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

/** The /proc word of a dotted-quad IPv4 address, or undefined when it is not one. */
export function procWordOfIpv4(address: string): number | undefined {
  const parts = address.split(".");
  if (parts.length !== 4) return undefined;
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  if (octets.some((o) => !(o >= 0 && o <= 255))) return undefined;
  const [a, b, c, d] = octets as [number, number, number, number];
  return procWordOf(a, b, c, d);
}

/** Dotted-quad text of a /proc word (only built when a forwarder starts). */
export function ipv4OfProcWord(word: number): string {
  const octets = LITTLE_ENDIAN
    ? [word & 0xff, (word >>> 8) & 0xff, (word >>> 16) & 0xff, word >>> 24]
    : [word >>> 24, (word >>> 16) & 0xff, (word >>> 8) & 0xff, word & 0xff];
  return octets.join(".");
}

function firstOctet(word: number): number {
  return LITTLE_ENDIAN ? word & 0xff : word >>> 24;
}

const LOOPBACK6_LAST_WORD = procWordOf(0, 0, 0, 1);
const V4_MAPPED_PREFIX_WORD = procWordOf(0, 0, 0xff, 0xff);

function nibble(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  if (byte >= 0x41 && byte <= 0x46) return byte - 0x37;
  if (byte >= 0x61 && byte <= 0x66) return byte - 0x57;
  return -1;
}

function classifyV4(table: ListenerTable, port: number, word: number, forwardHostWord: number): void {
  if (word === 0 || word === forwardHostWord) table.mark(port, EXTERNAL);
  else if (firstOctet(word) === 127) table.mark(port, LOCAL_V4, word);
}

/**
 * Adds the LISTEN sockets in one /proc/net/tcp (v6 false) or /proc/net/tcp6 (v6 true)
 * text to `table`. `forwardHostWord` is the forward host's /proc word (listeners there
 * are already reachable). Malformed lines are skipped; nothing is allocated.
 */
export function parseProcNetTcp(
  buf: Uint8Array,
  length: number,
  v6: boolean,
  forwardHostWord: number,
  table: ListenerTable,
): void {
  const addrChars = v6 ? 32 : 8;
  let i = buf.indexOf(NEWLINE) + 1; // the header line
  if (i === 0) return;
  while (i < length) {
    const lineEnd = buf.indexOf(NEWLINE, i);
    const end = lineEnd === -1 || lineEnd > length ? length : lineEnd;
    // "  sl: LOCAL:PORT REMOTE:PORT ST ..."
    let p = buf.indexOf(COLON, i);
    if (p === -1 || p >= end) break;
    p++;
    while (p < end && buf[p] === SPACE) p++;
    let w0 = 0;
    let w1 = 0;
    let w2 = 0;
    let w3 = 0;
    let ok = p + addrChars < end && buf[p + addrChars] === COLON;
    for (let k = 0; ok && k < addrChars; k++) {
      const n = nibble(buf[p + k] as number);
      if (n < 0) ok = false;
      const word = k >> 3;
      if (word === 0) w0 = ((w0 << 4) | n) >>> 0;
      else if (word === 1) w1 = ((w1 << 4) | n) >>> 0;
      else if (word === 2) w2 = ((w2 << 4) | n) >>> 0;
      else w3 = ((w3 << 4) | n) >>> 0;
    }
    p += addrChars + 1;
    let port = 0;
    while (ok && p < end && buf[p] !== SPACE) {
      const n = nibble(buf[p] as number);
      if (n < 0) ok = false;
      port = (port << 4) | n;
      p++;
    }
    while (p < end && buf[p] === SPACE) p++;
    while (p < end && buf[p] !== SPACE) p++; // remote address
    while (p < end && buf[p] === SPACE) p++;
    const state = p + 1 < end ? (nibble(buf[p] as number) << 4) | nibble(buf[p + 1] as number) : -1;
    if (ok && state === TCP_LISTEN && port > 0 && port < 65536) {
      if (!v6) classifyV4(table, port, w0, forwardHostWord);
      else if (w0 === 0 && w1 === 0) {
        if (w2 === 0 && w3 === 0)
          table.mark(port, EXTERNAL); // "::" (dual-stack wildcard)
        else if (w2 === 0 && w3 === LOOPBACK6_LAST_WORD) table.mark(port, LOCAL_V6);
        else if (w2 === V4_MAPPED_PREFIX_WORD) classifyV4(table, port, w3, forwardHostWord);
      }
    }
    i = end + 1;
  }
}
