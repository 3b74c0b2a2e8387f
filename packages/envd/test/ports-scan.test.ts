import { once } from "node:events";
import { createServer } from "node:net";
import { describe, expect, it } from "vitest";
import { EXTERNAL, ListenerTable, LOCAL_V4, LOCAL_V6 } from "../src/ports/listener-table.js";
import { ProcFileReader } from "../src/ports/proc-file-reader.js";
import { ipv4OfProcWord, parseProcNetTcp, procWordOf, procWordOfIpv4 } from "../src/ports/proc-net-tcp.js";

const hex8 = (word: number) => word.toString(16).toUpperCase().padStart(8, "0");
const hex4 = (port: number) => port.toString(16).toUpperCase().padStart(4, "0");
const v4 = (a: number, b: number, c: number, d: number) => hex8(procWordOf(a, b, c, d));
const ZERO = "00000000";

/** One /proc/net/tcp{,6} line as the kernel prints it. */
function line(sl: number, addr: string, port: number, state: string): string {
  const remote = "0".repeat(addr.length);
  return `${String(sl).padStart(4)}: ${addr}:${hex4(port)} ${remote}:0000 ${state} 00000000:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0\n`;
}

function parse(text: string, v6: boolean, forwardHost = "169.254.0.21"): ListenerTable {
  const table = new ListenerTable();
  const buf = Buffer.from(text);
  parseProcNetTcp(buf, buf.length, v6, procWordOfIpv4(forwardHost) ?? 0, table);
  return table;
}

const HEADER4 =
  "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

describe("/proc/net/tcp parsing", () => {
  it("converts addresses to and from the kernel's host-order words", () => {
    expect(procWordOfIpv4("127.0.0.1")).toBe(procWordOf(127, 0, 0, 1));
    expect(ipv4OfProcWord(procWordOf(127, 0, 0, 5))).toBe("127.0.0.5");
    expect(procWordOfIpv4("256.0.0.1")).toBeUndefined();
    expect(procWordOfIpv4("::1")).toBeUndefined();
  });

  it("classifies IPv4 LISTEN sockets and ignores other states", () => {
    const table = parse(
      HEADER4 +
        line(0, v4(127, 0, 0, 1), 8080, "0A") +
        line(1, v4(127, 0, 0, 5), 8081, "0A") +
        line(2, ZERO, 8082, "0A") +
        line(3, v4(169, 254, 0, 21), 8083, "0A") +
        line(4, v4(127, 0, 0, 1), 8084, "01") + // ESTABLISHED
        line(5, v4(10, 0, 0, 7), 8085, "0A") +
        line(12345, v4(127, 0, 0, 1), 65535, "0A"),
      false,
    );
    expect(table.flags[8080]).toBe(LOCAL_V4);
    expect(ipv4OfProcWord(table.localV4Word[8081] as number)).toBe("127.0.0.5");
    expect(table.flags[8082]).toBe(EXTERNAL);
    expect(table.flags[8083]).toBe(EXTERNAL);
    expect(table.flags[8084]).toBe(0);
    expect(table.flags[8085]).toBe(0);
    expect(table.flags[65535]).toBe(LOCAL_V4);
    expect(table.touchedCount).toBe(5);
  });

  it("classifies IPv6 loopback, wildcard and IPv4-mapped sockets", () => {
    const loopback6 = ZERO + ZERO + ZERO + hex8(procWordOf(0, 0, 0, 1));
    const mapped = (a: number, b: number, c: number, d: number) =>
      ZERO + ZERO + hex8(procWordOf(0, 0, 0xff, 0xff)) + v4(a, b, c, d);
    const table = parse(
      `  sl  local_address                         remote_address                        st\n${line(0, loopback6, 3000, "0A")}${line(1, "0".repeat(32), 3001, "0A")}${line(2, mapped(127, 0, 0, 1), 3002, "0A")}${line(3, mapped(169, 254, 0, 21), 3003, "0A")}${line(4, `FE800000${ZERO}${ZERO}${hex8(7)}`, 3004, "0A")}`,
      true,
    );
    expect(table.flags[3000]).toBe(LOCAL_V6);
    expect(table.flags[3001]).toBe(EXTERNAL);
    expect(table.flags[3002]).toBe(LOCAL_V4);
    expect(table.flags[3003]).toBe(EXTERNAL);
    expect(table.flags[3004]).toBe(0);
  });

  it("skips malformed and truncated lines", () => {
    const table = parse(
      `${HEADER4}garbage\n   1: ZZZZZZZZ:1F90 x 0A\n${line(2, v4(127, 0, 0, 1), 9000, "0A").slice(0, 30)}`,
      false,
    );
    expect(table.touchedCount).toBe(0);
  });

  it("merges flags per port and resets only what it touched", () => {
    const table = parse(HEADER4 + line(0, v4(127, 0, 0, 1), 7000, "0A") + line(1, ZERO, 7000, "0A"), false);
    expect(table.flags[7000]).toBe(LOCAL_V4 | EXTERNAL);
    table.reset();
    expect(table.flags[7000]).toBe(0);
    expect(table.touchedCount).toBe(0);
  });

  it("rejects with the open error of a missing file", async () => {
    await expect(new ProcFileReader().read("/proc/net/no-such-table")).rejects.toMatchObject({
      code: "ENOENT",
    });
  });

  it("finds a real server listening on 127.0.0.1 in this host's /proc/net/tcp", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as { port: number }).port;
    try {
      const reader = new ProcFileReader(64); // tiny, so the reader has to grow
      const table = new ListenerTable();
      const length = await reader.read("/proc/net/tcp");
      expect(reader.buffer.length).toBeGreaterThanOrEqual(length);
      parseProcNetTcp(reader.buffer, length, false, 0, table);
      expect(table.flags[port]).toBe(LOCAL_V4);
      expect(ipv4OfProcWord(table.localV4Word[port] as number)).toBe("127.0.0.1");
    } finally {
      server.close();
    }
  });
});
