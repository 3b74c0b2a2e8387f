import { once } from "node:events";
import { type AddressInfo, createServer } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { describe, expect, it } from "vitest";
import { parseConnectionHello } from "../src/egress/connection-hello.js";

/** The first bytes a real TLS client (Node's OpenSSL) sends, with the given SNI. */
async function realClientHello(servername: string | undefined): Promise<Buffer> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const got = new Promise<Buffer>((resolve) => {
    server.once("connection", (s) => {
      const chunks: Buffer[] = [];
      s.on("data", (d: Buffer) => {
        chunks.push(d);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          resolve(all);
          s.destroy();
        }
      });
    });
  });
  const client = tlsConnect({ host: "127.0.0.1", port, rejectUnauthorized: false, servername });
  client.on("error", () => {});
  const hello = await got;
  client.destroy();
  server.close();
  return hello;
}

describe("connection hello", () => {
  it("reads the SNI of a real ClientHello, and waits for the whole record", async () => {
    const hello = await realClientHello("Allowed.Test");
    expect(parseConnectionHello(hello)).toEqual({ kind: "tls", name: "allowed.test" });
    for (const cut of [1, 4, 5, 40, hello.length - 1]) {
      expect(parseConnectionHello(hello.subarray(0, cut))).toEqual({ kind: "more" });
    }
  });

  it("a ClientHello without SNI has no name", async () => {
    // Node sends no SNI for an IP address.
    const hello = await realClientHello(undefined);
    expect(parseConnectionHello(hello)).toEqual({ kind: "tls", name: undefined });
  });

  it("refuses malformed TLS", async () => {
    const hello = await realClientHello("allowed.test");
    const wrongType = Buffer.from(hello);
    wrongType[5] = 2; // ServerHello
    expect(parseConnectionHello(wrongType).kind).toBe("invalid");
    const badLength = Buffer.from(hello);
    badLength.writeUInt16BE(0xffff, 3);
    expect(parseConnectionHello(badLength).kind).toBe("invalid");
    const lying = Buffer.from(hello);
    lying.writeUInt8(0xff, 6); // handshake length far beyond the record
    expect(parseConnectionHello(lying).kind).toBe("invalid");
  });

  it("reads the Host of an HTTP/1.x request head, without its port", () => {
    const head = (h: string) => Buffer.from(`GET /x HTTP/1.1\r\n${h}User-Agent: t\r\n\r\nbody`);
    expect(parseConnectionHello(head("Host: Allowed.test:8080\r\n"))).toEqual({
      kind: "http",
      name: "allowed.test",
    });
    expect(parseConnectionHello(head("host:allowed.test\r\n"))).toEqual({
      kind: "http",
      name: "allowed.test",
    });
    expect(parseConnectionHello(head(""))).toEqual({ kind: "http", name: undefined });
    // Two Host headers: no name (refused), whichever a server would pick.
    expect(parseConnectionHello(head("Host: allowed.test\r\nHost: other.test\r\n"))).toEqual({
      kind: "http",
      name: undefined,
    });
    expect(parseConnectionHello(head("Host: bad_name!\r\n"))).toEqual({ kind: "http", name: undefined });
    expect(parseConnectionHello(Buffer.from("GET / HTTP/1.1\r\nHost: a.test\r\n"))).toEqual({ kind: "more" });
    expect(parseConnectionHello(Buffer.from("GE"))).toEqual({ kind: "more" });
  });

  it("refuses what is neither", () => {
    expect(parseConnectionHello(Buffer.from("SSH-2.0-OpenSSH_9.6\r\n")).kind).toBe("invalid");
    expect(parseConnectionHello(Buffer.from([0x00, 0x01, 0x02])).kind).toBe("invalid");
    expect(parseConnectionHello(Buffer.from("GET / HTTP/2.0\r\nHost: a.test\r\n\r\n")).kind).toBe("invalid");
    expect(parseConnectionHello(Buffer.alloc(9000, "A")).kind).toBe("invalid");
  });
});
