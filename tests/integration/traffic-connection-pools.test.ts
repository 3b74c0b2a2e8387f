import { createServer, request, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createSandboxProxy } from "../../packages/control-plane/src/proxy/sandbox-proxy.js";
import {
  type SandboxTrafficServer,
  startSandboxTrafficServer,
} from "../../packages/host-agent/src/traffic/sandbox-traffic-server.js";

const TOKEN = "agent-token-for-the-pool-test";
const SANDBOX = "ipoolsandbox00000000";

/** A GET through the traffic listener to the sandbox's port; resolves with status and body. */
function get(trafficPort: number, port: number, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: "127.0.0.1",
        port: trafficPort,
        path: "/",
        agent: false,
        headers: { "wrenn-agent-token": TOKEN, "e2b-sandbox-id": SANDBOX, "e2b-sandbox-port": String(port) },
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          body += d;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * The traffic hop's kept-alive connections to guests, over real sockets: a real HTTP server
 * stands in for a guest's port, and the test plays the sandbox's lifecycle through what the
 * hop asks (its address, and which VM instance runs it). A connection the "guest" froze
 * (as a paused VM holds one) takes requests and never answers, so a hop that reused it
 * after the sandbox moved on to a new VM would hang.
 */
describe("traffic hop connection pools", () => {
  let guest: Server;
  let traffic: SandboxTrafficServer;
  let guestPort = 0;
  let address: string | undefined = "127.0.0.1";
  let instance = "vm-1";
  const connections: Socket[] = [];
  const frozen = new Set<Socket>();

  beforeAll(async () => {
    guest = createServer((req, res) => {
      if (frozen.has(req.socket)) return; // a VM that is not running answers nothing
      res.end(`answered on connection ${connections.indexOf(req.socket)}`);
    });
    guest.on("connection", (socket: Socket) => connections.push(socket));
    await new Promise<void>((resolve) => guest.listen(0, "127.0.0.1", resolve));
    guestPort = (guest.address() as AddressInfo).port;
    traffic = await startSandboxTrafficServer({
      host: "127.0.0.1",
      port: 0,
      hostToken: TOKEN,
      sandboxAddress: async () => address,
      sandboxInstance: () => (address ? instance : undefined),
      logger: createSilentLogger(),
    });
  });

  afterAll(async () => {
    await traffic?.close();
    guest?.closeAllConnections();
    await new Promise<void>((resolve) => guest?.close(() => resolve()));
  });

  beforeEach(() => {
    address = "127.0.0.1";
    frozen.clear();
  });

  it("reuses one connection to a running guest for request after request", async () => {
    instance = "vm-reuse";
    const before = connections.length;
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await get(traffic.port, guestPort));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(connections.length - before).toBe(1);
    expect(new Set(answers.map((a) => a.body)).size).toBe(1);
  });

  it("after a pause and resume (a new VM), the next request answers on a new connection", async () => {
    instance = "vm-before-pause";
    expect((await get(traffic.port, guestPort)).status).toBe(200);
    const kept = connections.at(-1);
    if (!kept) throw new Error("no connection");
    // The VM is paused: what it held open stays open and answers nothing.
    for (const socket of connections) frozen.add(socket);
    address = undefined;
    expect((await get(traffic.port, guestPort)).status).toBe(502);
    address = "127.0.0.1";
    instance = "vm-after-resume";
    const before = connections.length;
    const after = await get(traffic.port, guestPort);
    expect(after.status).toBe(200);
    expect(connections.length).toBe(before + 1);
    expect(after.body).toBe(`answered on connection ${connections.length - 1}`);
  });

  it("a resume seen only as a new VM (no request while paused) still drops the old connections", async () => {
    instance = "vm-a";
    expect((await get(traffic.port, guestPort)).status).toBe(200);
    for (const socket of connections) frozen.add(socket);
    instance = "vm-b";
    const answer = await get(traffic.port, guestPort);
    expect(answer.status).toBe(200);
    expect(answer.body).toBe(`answered on connection ${connections.length - 1}`);
  });

  it("the kept connection is closed once the hop sees the sandbox is not running", async () => {
    instance = "vm-closing";
    expect((await get(traffic.port, guestPort)).status).toBe(200);
    const kept = connections.at(-1);
    if (!kept) throw new Error("no connection");
    const closed = new Promise<void>((resolve) => kept.once("close", () => resolve()));
    address = undefined;
    expect((await get(traffic.port, guestPort)).status).toBe(502);
    await closed;
    expect(kept.destroyed).toBe(true);
  });
});

/**
 * The control plane's proxy keeps its connections to a host agent alive: a real HTTP server
 * stands in for the agent's traffic listener and counts the connections it is given.
 */
describe("sandbox proxy connections to the agent", () => {
  it("carries request after request on one connection", async () => {
    let accepted = 0;
    const agentSide = createServer((req, res) => {
      req.resume();
      res.end(String(req.headers["e2b-sandbox-id"]));
    });
    agentSide.on("connection", () => accepted++);
    await new Promise<void>((resolve) => agentSide.listen(0, "127.0.0.1", resolve));
    const agentPort = (agentSide.address() as AddressInfo).port;
    const proxy = createSandboxProxy({
      logger: createSilentLogger(),
      domain: undefined,
      resolve: async () => ({
        reachable: true,
        protocol: "http:",
        host: "127.0.0.1",
        port: agentPort,
        agentToken: TOKEN,
        access: { trafficAccessToken: null, maskRequestHost: null },
      }),
    });
    const front = createServer((req, res) => {
      if (!proxy.request(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => front.listen(0, "127.0.0.1", resolve));
    const frontPort = (front.address() as AddressInfo).port;
    try {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`http://127.0.0.1:${frontPort}/`, {
          headers: { "e2b-sandbox-id": SANDBOX, "e2b-sandbox-port": "49983" },
        });
        expect(await res.text()).toBe(SANDBOX);
      }
      expect(accepted).toBe(1);
    } finally {
      proxy.close();
      front.closeAllConnections();
      agentSide.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await new Promise<void>((resolve) => agentSide.close(() => resolve()));
    }
  });
});
