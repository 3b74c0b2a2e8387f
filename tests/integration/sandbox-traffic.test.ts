import { createServer, type IncomingMessage, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { createSilentLogger } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "../../packages/control-plane/test/helpers/cp-fixture.js";
import {
  openTestDatabase,
  type TestDatabase,
} from "../../packages/control-plane/test/helpers/test-databases.js";
import {
  type SandboxTrafficServer,
  startSandboxTrafficServer,
} from "../../packages/host-agent/src/traffic/sandbox-traffic-server.js";

const DOMAIN = "wrenn.test";

const AGENT_TOKEN = "agent-token-for-the-proxy-test";

/**
 * Both hops of sandbox traffic without VMs: the control plane's proxy relays to a real
 * host agent traffic listener (registered as a host row), which relays to a real HTTP
 * server standing in for a port inside the sandbox.
 */
describe("sandbox traffic proxy", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  let upstream: Server;
  let traffic: SandboxTrafficServer;
  let port = 0;
  const running = "iproxyrunning0000000";
  const paused = "iproxypaused00000000";
  /** What the stand-in server saw of the last request. */
  const touched: string[] = [];
  let seen: {
    headers: IncomingMessage["headers"];
    body: string;
    firstChunkAt: number;
    endAt: number;
  } | null = null;

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      const chunks: Buffer[] = [];
      let firstChunkAt = 0;
      req.on("data", (c: Buffer) => {
        if (!firstChunkAt) firstChunkAt = Date.now();
        chunks.push(c);
      });
      req.on("end", () => {
        seen = {
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          firstChunkAt,
          endAt: Date.now(),
        };
        if (req.url === "/stream") {
          res.writeHead(200, { "content-type": "text/plain" });
          res.write("first\n");
          setTimeout(() => res.end("second\n"), 700);
          return;
        }
        res.writeHead(201, { "content-type": "application/json", "x-upstream": "yes" });
        res.end(JSON.stringify({ url: req.url, method: req.method, length: Buffer.concat(chunks).length }));
      });
    });
    upstream.on("upgrade", (_req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    port = (upstream.address() as AddressInfo).port;

    traffic = await startSandboxTrafficServer({
      host: "127.0.0.1",
      port: 0,
      hostToken: AGENT_TOKEN,
      sandboxAddress: async (id) => (id === running ? "127.0.0.1" : undefined),
      touch: (id) => touched.push(id),
      logger: createSilentLogger(),
    });

    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, { config: { sandboxDomain: DOMAIN } });
    await t.database.db
      .insertInto("hosts")
      .values({
        id: "hproxy",
        team_id: null,
        name: "proxy-test",
        state: "up",
        // Only the host part is used for traffic; the port comes from the agent's Ping.
        url: "http://127.0.0.1:1",
        agent_token: AGENT_TOKEN,
        credential_hash: null,
        agent_host_id: null,
        version: null,
        vmm: null,
        accel: null,
        images: "[]",
        traffic_port: traffic.port,
        last_seen_at: null,
        registered_at: null,
      })
      .execute();
    for (const [id, state] of [
      [running, "running"],
      [paused, "paused"],
    ] as const) {
      await t.database.db
        .insertInto("sandboxes")
        .values({
          id,
          team_id: fx.adminTeamId,
          host_id: "hproxy",
          template: "base",
          snapshot_id: null,
          state,
          vcpus: 1,
          memory_mib: 512,
          disk_mib: 2048,
          timeout_sec: 300,
          metadata: "{}",
          envd_access_token: "tok",
          host_ip: "127.0.0.1",
          error: null,
          expires_at: null,
          stopped_at: null,
        })
        .execute();
    }
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
    await traffic?.close();
    await new Promise((resolve) => upstream?.close(resolve));
  });

  const sandboxHeaders = (id: string, p: number | string) => ({
    "e2b-sandbox-id": id,
    "e2b-sandbox-port": String(p),
  });

  it("forwards by E2b-Sandbox-Id/-Port without the API's auth or body parsing", async () => {
    const body = "{this is not json";
    const res = await fetch(`${fx.url}/v1/sandboxes?x=1`, {
      method: "POST",
      headers: {
        ...sandboxHeaders(running, port),
        "content-type": "application/json",
        "x-access-token": "tok",
      },
      body,
    });
    expect(res.status).toBe(201);
    expect(res.headers.get("x-upstream")).toBe("yes");
    expect(await res.json()).toEqual({ url: "/v1/sandboxes?x=1", method: "POST", length: body.length });
    expect(seen?.body).toBe(body);
    expect(seen?.headers["x-access-token"]).toBe("tok");
    // The hop credential stays between the control plane and the agent.
    expect(seen?.headers["wrenn-agent-token"]).toBeUndefined();
  });

  it("the agent's listener takes nothing without the host token, and a client's token header is not passed on", async () => {
    const direct = `http://127.0.0.1:${traffic.port}/x`;
    for (const token of [undefined, "wrong", `${AGENT_TOKEN}x`]) {
      const res = await fetch(direct, {
        headers: { ...sandboxHeaders(running, port), ...(token ? { "wrenn-agent-token": token } : {}) },
      });
      expect(res.status, String(token)).toBe(401);
    }
    const ok = await fetch(direct, {
      headers: { ...sandboxHeaders(running, port), "wrenn-agent-token": AGENT_TOKEN },
    });
    expect(ok.status).toBe(201);
    // Through the control plane, a made-up hop credential is replaced, never forwarded.
    const res = await fetch(`${fx.url}/y`, {
      headers: { ...sandboxHeaders(running, port), "wrenn-agent-token": "forged" },
    });
    expect(res.status).toBe(201);
    expect(seen?.headers["wrenn-agent-token"]).toBeUndefined();
  });

  it("marks activity only for Wrenn's own guest client: proxied client traffic keeps an absolute timeout", async () => {
    touched.length = 0;
    const direct = `http://127.0.0.1:${traffic.port}/activity`;
    const hop = { ...sandboxHeaders(running, port), "wrenn-agent-token": AGENT_TOKEN };
    expect((await fetch(direct, { headers: hop })).status).toBe(201);
    expect(touched).toEqual([]);
    expect((await fetch(direct, { headers: { ...hop, "wrenn-activity": "1" } })).status).toBe(201);
    expect(touched).toEqual([running]);
    expect(seen?.headers["wrenn-activity"]).toBeUndefined();
    // A client of the proxy cannot claim activity: the header is dropped on the way.
    const proxied = await fetch(`${fx.url}/activity`, {
      headers: { ...sandboxHeaders(running, port), "wrenn-activity": "1" },
    });
    expect(proxied.status).toBe(201);
    expect(touched).toEqual([running]);
  });

  it("passes bodies larger than the API's JSON limit", async () => {
    const big = Buffer.alloc(6 * 1024 * 1024, 97);
    const res = await fetch(`${fx.url}/upload`, {
      method: "PUT",
      headers: { ...sandboxHeaders(running, port), "content-type": "application/octet-stream" },
      body: big,
    });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { length: number }).length).toBe(big.length);
  });

  it("streams the response as it comes", async () => {
    const started = Date.now();
    const res = await fetch(`${fx.url}/stream`, { headers: sandboxHeaders(running, port) });
    const reader = res.body?.getReader();
    if (!reader) throw new Error("no body");
    const first = await reader.read();
    const firstAt = Date.now() - started;
    expect(new TextDecoder().decode(first.value)).toBe("first\n");
    expect(firstAt).toBeLessThan(600);
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read())
      rest += new TextDecoder().decode(r.value);
    expect(rest).toBe("second\n");
  });

  it("streams the request body as it comes", async () => {
    const url = new URL(fx.url);
    const result = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: url.hostname,
          port: url.port,
          method: "POST",
          path: "/slow",
          headers: sandboxHeaders(running, port),
        },
        (res) => {
          res.resume();
          res.on("end", () => resolve("done"));
        },
      );
      req.on("error", reject);
      req.write("part one;");
      setTimeout(() => req.end("part two"), 600);
    });
    expect(result).toBe("done");
    expect(seen?.body).toBe("part one;part two");
    // The first part reached the sandbox before the client had finished sending.
    expect((seen?.endAt ?? 0) - (seen?.firstChunkAt ?? 0)).toBeGreaterThan(400);
  });

  it("routes <port>-<id>.<domain> hosts, and only that domain", async () => {
    const url = new URL(fx.url);
    const viaHost = (host: string, path: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: url.hostname, port: url.port, path, headers: { host } }, (res) => {
          let body = "";
          res.on("data", (d) => {
            body += d;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.on("error", reject);
        req.end();
      });
    const hit = await viaHost(`${port}-${running}.${DOMAIN}:${url.port}`, "/x");
    expect(hit.status).toBe(201);
    expect(JSON.parse(hit.body)).toMatchObject({ url: "/x" });
    const other = await viaHost(`${port}-${running}.example.com`, "/health");
    expect(JSON.parse(other.body)).toMatchObject({ status: "ok" });
    const stopped = await viaHost(`${port}-inosuchsandbox000000.${DOMAIN}`, "/");
    expect(stopped.status).toBe(502);
  });

  it("answers 502 in e2b's shape for a sandbox not running, unknown, or not answering", async () => {
    for (const [id, p] of [
      [paused, port],
      ["inosuchsandbox000000", port],
      [running, 1],
    ] as const) {
      const res = await fetch(`${fx.url}/health`, { headers: sandboxHeaders(id, p) });
      expect(res.status, `${id}:${p}`).toBe(502);
      expect(await res.json()).toEqual({ sandboxId: id, message: "The sandbox was not found", code: 502 });
    }
  });

  it("answers 400 for routing headers that name no sandbox port", async () => {
    for (const headers of [
      sandboxHeaders(running, "99999"),
      sandboxHeaders("not/an/id", port),
      { "e2b-sandbox-id": running },
    ]) {
      const res = await fetch(`${fx.url}/health`, { headers });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { code: number }).code).toBe(400);
    }
  });

  it("tunnels protocol upgrades (WebSocket) both ways", async () => {
    const url = new URL(fx.url);
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = request({
        host: url.hostname,
        port: url.port,
        path: "/ws",
        headers: { ...sandboxHeaders(running, port), connection: "Upgrade", upgrade: "websocket" },
      });
      req.on("upgrade", (res, socket) => {
        expect(res.statusCode).toBe(101);
        socket.write("hello tunnel");
        let got = "";
        socket.on("data", (d: Buffer) => {
          got += d.toString();
          if (got.length >= "hello tunnel".length) {
            socket.destroy();
            resolve(got);
          }
        });
      });
      req.on("response", (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on("error", reject);
      req.end();
    });
    expect(echoed).toBe("hello tunnel");
  });
});
