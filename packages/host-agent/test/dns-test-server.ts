import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { connect, createServer, type Server } from "node:net";

/**
 * A tiny authoritative DNS responder for tests (UDP and TCP on one loopback port), and a
 * client to ask it or the forwarder. Only A queries; written from RFC 1035 §4.
 */

export function encodeName(name: string): Buffer {
  const parts = name.split(".").filter(Boolean);
  return Buffer.concat([
    ...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p)])),
    Buffer.from([0]),
  ]);
}

export function buildQuery(name: string, id: number): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2); // RD
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, encodeName(name), Buffer.from([0, 1, 0, 1])]);
}

/** The question's name and where the question ends. */
function readQuestion(msg: Buffer): { name: string; end: number } {
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const len = msg[at] ?? 0;
    at += 1;
    if (len === 0) break;
    labels.push(msg.subarray(at, at + len).toString());
    at += len;
  }
  return { name: labels.join("."), end: at + 4 };
}

/** Past a (possibly compressed) name starting at `at`. */
function skipName(msg: Buffer, at: number): number {
  for (;;) {
    const len = msg[at] ?? 0;
    if (len >= 0xc0) return at + 2;
    at += 1 + len;
    if (len === 0) return at;
  }
}

export interface ParsedAnswer {
  id: number;
  rcode: number;
  truncated: boolean;
  name: string;
  addresses: string[];
  bytes: number;
}

export function parseAnswer(msg: Buffer): ParsedAnswer {
  const flags = msg.readUInt16BE(2);
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let name = "";
  let at = 12;
  if (qd > 0) {
    const q = readQuestion(msg);
    name = q.name;
    at = q.end;
  }
  const addresses: string[] = [];
  for (let i = 0; i < an; i++) {
    at = skipName(msg, at);
    const type = msg.readUInt16BE(at);
    const rdlen = msg.readUInt16BE(at + 8);
    if (type === 1) addresses.push([...msg.subarray(at + 10, at + 14)].join("."));
    at += 10 + rdlen;
  }
  return {
    id: msg.readUInt16BE(0),
    rcode: flags & 0xf,
    truncated: (flags & 0x0200) !== 0,
    name,
    addresses,
    bytes: msg.length,
  };
}

function buildAnswer(query: Buffer, addresses: string[] | undefined, overUdp: boolean): Buffer {
  const { end } = readQuestion(query);
  const records = (addresses ?? []).map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(1, 2); // A
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(60, 6);
    rr.writeUInt16BE(4, 10);
    Buffer.from(ip.split(".").map(Number)).copy(rr, 12);
    return rr;
  });
  const header = Buffer.alloc(12);
  query.copy(header, 0, 0, 2);
  let flags = 0x8000 | (query.readUInt16BE(2) & 0x0100) | 0x0400 | 0x0080 | (addresses ? 0 : 3);
  let answers = records;
  // Classic DNS over UDP: more than 512 bytes does not fit; the client must ask over TCP.
  if (overUdp && end + 16 * records.length > 512) {
    flags |= 0x0200;
    answers = [];
  }
  header.writeUInt16BE(flags, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, query.subarray(12, end), ...answers]);
}

export interface TestResponder {
  host: string;
  port: number;
  /** Names asked, with the transport, in arrival order. */
  asked: Array<{ name: string; transport: "udp" | "tcp" }>;
  /** Answers every held query (names starting with "hold-"). */
  release(): void;
  close(): Promise<void>;
}

/**
 * Answers A queries from `records` (NXDOMAIN for other names). `silent`: answers nothing.
 * Names starting with `hold-` are answered only on `release()`. `rcode`: answers everything
 * with that rcode instead (e.g. 2, SERVFAIL).
 */
export async function startResponder(options: {
  host?: string;
  records: Record<string, string[]>;
  silent?: boolean;
  rcode?: number;
}): Promise<TestResponder> {
  const host = options.host ?? "127.0.0.1";
  const asked: TestResponder["asked"] = [];
  const held: Array<() => void> = [];
  const respond = (query: Buffer, transport: "udp" | "tcp", send: (b: Buffer) => void) => {
    const { name } = readQuestion(query);
    asked.push({ name, transport });
    if (options.silent) return;
    let answer = buildAnswer(query, options.records[name], transport === "udp");
    if (options.rcode !== undefined) {
      answer = buildAnswer(query, [], false);
      answer.writeUInt16BE((answer.readUInt16BE(2) & ~0xf) | options.rcode, 2);
    }
    if (name.startsWith("hold-")) held.push(() => send(answer));
    else send(answer);
  };
  const udp: UdpSocket = createSocket("udp4");
  await new Promise<void>((resolve) => udp.bind(0, host, resolve));
  const port = udp.address().port;
  udp.on("message", (msg, rinfo) => respond(msg, "udp", (b) => udp.send(b, rinfo.port, rinfo.address)));
  const sockets = new Set<import("node:net").Socket>();
  const tcp: Server = createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        respond(Buffer.from(msg), "tcp", (b) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(b.length);
          if (!s.destroyed) s.write(Buffer.concat([len, b]));
        });
      }
    });
  });
  await new Promise<void>((resolve) => tcp.listen(port, host, resolve));
  return {
    host,
    port,
    asked,
    release: () => {
      for (const send of held.splice(0)) send();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => udp.close(() => resolve())),
      ]);
    },
  };
}

/** Asks over UDP; undefined when nothing comes back within `timeoutMs`. */
export function askUdp(
  host: string,
  port: number,
  name: string,
  id: number,
  timeoutMs = 3000,
): Promise<ParsedAnswer | undefined> {
  return new Promise((resolve) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      resolve(undefined);
    }, timeoutMs);
    s.on("error", () => {});
    s.on("message", (msg) => {
      clearTimeout(timer);
      s.close();
      resolve(parseAnswer(msg));
    });
    s.send(buildQuery(name, id), port, host);
  });
}

/** Asks over TCP; the error code when the connection fails, undefined on timeout. */
export function askTcp(
  host: string,
  port: number,
  name: string,
  id: number,
  timeoutMs = 3000,
): Promise<ParsedAnswer | string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    let buf = Buffer.alloc(0);
    const done = (r: ParsedAnswer | string | undefined) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    s.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    s.on("connect", () => {
      const q = buildQuery(name, id);
      const len = Buffer.alloc(2);
      len.writeUInt16BE(q.length);
      s.write(Buffer.concat([len, q]));
    });
    s.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0))
        done(parseAnswer(buf.subarray(2, 2 + buf.readUInt16BE(0))));
    });
  });
}
