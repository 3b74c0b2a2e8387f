import { request } from "node:http";
import { e2bFormOfApiKey } from "@wrenn/control-plane";
import { ApiClient, Sandbox as WrennSandbox } from "@wrenn/sdk";
import { Sandbox, type SandboxOpts } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startResponder, type TestResponder } from "../../packages/host-agent/test/dns-test-server.js";
import { type EgressWorld, startEgressWorld } from "../../packages/host-agent/test/egress-test-world.js";
import { runWrenn } from "./cli-runner.js";
import { pointE2bSdkAt } from "./e2b-env.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";
import { until } from "./polling.js";
import { type Stack, startStack } from "./stack-fixture.js";

const PREFIX = "wnp";
const TOKEN_HEADER = "e2b-traffic-access-token";
/** E2B's placeholder in maskRequestHost, literally. */
const PORT_PLACEHOLDER = "$" + "{PORT}";

/** A server in the guest: plain requests get the Host they arrived with; upgrades echo bytes. */
const ECHO_SERVER = `
const http = require("node:http");
const server = http.createServer((req, res) => res.end("plain " + req.headers.host));
server.on("upgrade", (req, socket) => {
  socket.write("HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n\\r\\n");
  socket.pipe(socket);
});
server.listen(8080, "0.0.0.0");
`;

type Reply = { status: number; body: string };

/** A request for a sandbox port through the control plane's proxy (routing headers, no domain). */
function viaProxy(
  cpUrl: string,
  sandboxId: string,
  port: number,
  headers: Record<string, string> = {},
  upgrade?: string,
  path = "/",
): Promise<Reply> {
  const url = new URL(cpUrl);
  return new Promise((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      path,
      headers: {
        "e2b-sandbox-id": sandboxId,
        "e2b-sandbox-port": String(port),
        ...(upgrade ? { connection: "Upgrade", upgrade: "websocket" } : {}),
        ...headers,
      },
    });
    req.on("upgrade", (res, socket) => {
      socket.write(upgrade ?? "");
      let echoed = "";
      socket.on("data", (d: Buffer) => {
        echoed += d.toString("utf8");
        if (echoed.length >= (upgrade ?? "").length) {
          socket.destroy();
          resolve({ status: res.statusCode ?? 0, body: echoed });
        }
      });
      socket.on("error", reject);
    });
    req.on("response", (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/**
 * The stock `e2b` SDK's network options against the full stack with real VMs: the policy's
 * 400s, the policy shown in getInfo, updateNetwork on running and paused sandboxes, snapshot
 * template and fork inheritance, and private traffic that needs the traffic access token.
 */
/** In the guest: connect, print the server's first line (nothing when refused or timed out). */
const TCP_PY =
  "import socket,sys; s=socket.create_connection((sys.argv[1],int(sys.argv[2])),timeout=4); print(s.recv(100).decode().strip())";

describe("stock e2b SDK: network policy and private traffic", () => {
  let stack: Stack;
  let world: EgressWorld;
  let upstream: TestResponder;
  let dataDir = "";
  let restoreE2bEnv = () => {};

  beforeAll(async () => {
    // The sandboxes' "internet": a namespace on this machine (198.51.100.0/26) behind the agent's uplink.
    world = await startEgressWorld(PREFIX, 0);
    upstream = await startResponder({ records: { "allowed.test": [world.a1], "other.test": [world.a1] } });
    stack = await startStack({
      agents: [
        {
          netNamePrefix: PREFIX,
          firstSlot: 3950,
          maxSlots: 4,
          uplinkInterface: world.hostLink,
          dnsUpstreams: [`${upstream.host}:${upstream.port}`],
        },
      ],
    });
    dataDir = stack.agents[0]?.dataDir ?? "";
    restoreE2bEnv = pointE2bSdkAt(stack.url, e2bFormOfApiKey(stack.apiKey));
  }, 120_000);

  afterAll(async () => {
    restoreE2bEnv();
    await stack?.close();
    await upstream?.close();
    await world?.stop();
    expect(findHostLeftovers(dataDir, PREFIX)).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it.each([
    ["a malformed CIDR", { network: { denyOut: ["10.1.2.0/40"] } }, /bad_cidr: '10\.1\.2\.0\/40'/],
    ["an IPv6 entry", { network: { allowOut: ["2001:db8::/32"] } }, /ipv6_unsupported/],
    [
      "a domain without a deny-all",
      { network: { allowOut: ["api.example.com"] } },
      /domain_needs_deny_all: .*api\.example\.com/,
    ],
    ["a domain in denyOut", { network: { denyOut: ["example.com"] } }, /domain_in_deny/],
    [
      "a bad wildcard",
      { allowInternetAccess: false, network: { allowOut: ["*example.com"] } },
      /bad_wildcard: '\*example\.com'/,
    ],
    [
      "too many entries",
      { network: { denyOut: Array.from({ length: 101 }, (_, i) => `8.8.${i}.0/24`) } },
      /too_many_entries/,
    ],
    [
      "an allow inside an always-blocked range",
      { network: { allowOut: ["169.254.169.254"] } },
      /blocked_range/,
    ],
    ["a malformed masked host", { network: { maskRequestHost: "bad host\r\nx: 1" } }, /host name or address/],
    [
      "an egress proxy",
      { network: { egressProxy: { address: "proxy.example.com:1080" } } },
      /egressProxy is not supported/,
    ],
  ] as const)("create refuses %s with a 400 naming it", async (_name, opts, message) => {
    const before = await Sandbox.list().nextItems();
    // The SDK's types take the shapes; the server is what refuses them.
    await expect(Sandbox.create(opts as unknown as SandboxOpts)).rejects.toThrow(message);
    expect(await Sandbox.list().nextItems()).toHaveLength(before.length);
  });

  it("a private sandbox's ports need its traffic access token; envd's keeps its own auth", async () => {
    const sbx = await Sandbox.create({
      timeoutMs: 300_000,
      network: { allowPublicTraffic: false, maskRequestHost: `masked.test:${PORT_PLACEHOLDER}` },
    });
    try {
      const token = sbx.trafficAccessToken ?? "";
      expect(token).toMatch(/^[0-9a-f]{48}$/);
      const info = await Sandbox.getInfo(sbx.sandboxId);
      expect(info.network).toMatchObject({
        allowOut: [],
        denyOut: [],
        allowPublicTraffic: false,
        maskRequestHost: `masked.test:${PORT_PLACEHOLDER}`,
      });
      expect(info.allowInternetAccess).toBe(true);

      // Commands and files go to envd (port 49983) without the token, as the SDK sends them.
      await sbx.files.write("/home/user/echo.js", ECHO_SERVER);
      await sbx.commands.run("node /home/user/echo.js", { background: true });
      const withToken = { [TOKEN_HEADER]: token };
      await until(
        "the guest server",
        async () => (await viaProxy(stack.url, sbx.sandboxId, 8080, withToken)).status === 200,
      );
      const allowed = await viaProxy(stack.url, sbx.sandboxId, 8080, withToken);
      expect(allowed).toEqual({ status: 200, body: "plain masked.test:8080" });

      const missing = await viaProxy(stack.url, sbx.sandboxId, 8080);
      expect(missing.status).toBe(403);
      expect(JSON.parse(missing.body)).toEqual({
        code: 403,
        message: expect.stringMatching(/does not allow public traffic.*e2b-traffic-access-token/),
      });
      const wrong = await viaProxy(stack.url, sbx.sandboxId, 8080, { [TOKEN_HEADER]: "0".repeat(48) });
      expect(wrong.status).toBe(403);
      expect(wrong.body).toMatch(/does not match/);

      // WebSocket (an upgrade) the same way.
      expect(await viaProxy(stack.url, sbx.sandboxId, 8080, withToken, "through the tunnel")).toEqual({
        status: 101,
        body: "through the tunnel",
      });
      await expect(viaProxy(stack.url, sbx.sandboxId, 8080, {}, "refused")).resolves.toMatchObject({
        status: 403,
      });

      // envd's port is envd's to guard: /health answers without the traffic token.
      expect((await viaProxy(stack.url, sbx.sandboxId, 49983, {}, undefined, "/health")).status).toBe(204);

      // A public sandbox (the default) needs no token and gets no mask.
      const open = await Sandbox.create({ timeoutMs: 300_000 });
      try {
        expect(open.trafficAccessToken).toBeUndefined();
        expect((await Sandbox.getInfo(open.sandboxId)).network?.allowPublicTraffic).toBe(true);
      } finally {
        await open.kill();
      }
    } finally {
      await sbx.kill();
    }
  }, 240_000);

  it("enforces the SDK's network options in the guest: CIDRs, domains by SNI, live updates", async () => {
    const sbx = await Sandbox.create({
      timeoutMs: 300_000,
      allowInternetAccess: false,
      network: { allowOut: [world.a1] },
    });
    const tcp = async (address: string) =>
      (await sbx.commands.run(`python3 -c "${TCP_PY}" ${address} 7000 || true`)).stdout.trim();
    const https = async (name: string) => {
      const r = await sbx.commands.run(
        `curl -sk -m 8 --resolve ${name}:443:${world.a1} https://${name}/ || echo "curl exit $?"`,
      );
      return r.stdout.trim();
    };
    try {
      expect(await tcp(world.a1)).toBe(`tcp ${world.a1}`);
      expect(await tcp(world.a2)).toBe("");

      await sbx.updateNetwork({ allowOut: ["allowed.test"], denyOut: ["0.0.0.0/0"] });
      expect(await https("allowed.test")).toBe("tls allowed.test");
      // Same address, another name: refused by the name the connection asks for.
      expect(await https("other.test")).toMatch(/^curl exit/);
      expect(await tcp(world.a1)).toBe("");
      // Names the policy does not allow do not resolve either.
      expect((await sbx.commands.run("getent hosts other.test || echo none")).stdout.trim()).toBe("none");
      expect((await sbx.commands.run("getent hosts allowed.test")).stdout).toContain(world.a1);

      await sbx.updateNetwork({});
      expect(await tcp(world.a2)).toBe(`tcp ${world.a2}`);
    } finally {
      await sbx.kill();
    }
  }, 240_000);

  it("shows the policy; updateNetwork replaces it on running and paused sandboxes", async () => {
    const sbx = await Sandbox.create({
      timeoutMs: 300_000,
      allowInternetAccess: false,
      network: { allowOut: ["1.1.1.1", "api.example.com"] },
    });
    try {
      const info = await Sandbox.getInfo(sbx.sandboxId);
      expect(info.allowInternetAccess).toBe(false);
      expect(info.network).toMatchObject({
        allowOut: ["1.1.1.1/32", "api.example.com"],
        denyOut: ["0.0.0.0/0"],
        allowPublicTraffic: true,
      });

      await sbx.updateNetwork({ allowOut: ["8.8.8.0/24"], denyOut: ["9.9.9.9"] });
      const updated = await Sandbox.getInfo(sbx.sandboxId);
      expect(updated.allowInternetAccess).toBe(true);
      expect(updated.network).toMatchObject({ allowOut: ["8.8.8.0/24"], denyOut: ["9.9.9.9/32"] });

      await expect(sbx.updateNetwork({ denyOut: ["not-a-cidr/8"] })).rejects.toThrow(/bad_cidr/);

      await sbx.pause();
      await sbx.updateNetwork({ allowInternetAccess: false });
      expect((await Sandbox.getInfo(sbx.sandboxId)).network).toMatchObject({
        allowOut: [],
        denyOut: ["0.0.0.0/0"],
      });
      const back = await Sandbox.connect(sbx.sandboxId, { timeoutMs: 300_000 });
      expect((await Sandbox.getInfo(back.sandboxId)).network).toMatchObject({ denyOut: ["0.0.0.0/0"] });
      // An empty update opens it again.
      await back.updateNetwork({});
      expect((await Sandbox.getInfo(back.sandboxId)).network).toMatchObject({ allowOut: [], denyOut: [] });
    } finally {
      await sbx.kill();
    }
  }, 240_000);

  it("snapshot templates and forks keep the source's policy; a create may set its own", async () => {
    const sbx = await Sandbox.create({
      timeoutMs: 300_000,
      network: { denyOut: ["0.0.0.0/0"], allowOut: ["1.0.0.0/8"], allowPublicTraffic: false },
    });
    const made: Sandbox[] = [sbx];
    try {
      const snap = await sbx.createSnapshot({ name: "net-snap" });
      const child = await Sandbox.create(snap.snapshotId, { timeoutMs: 300_000 });
      made.push(child);
      expect((await Sandbox.getInfo(child.sandboxId)).network).toMatchObject({
        allowOut: ["1.0.0.0/8"],
        denyOut: ["0.0.0.0/0"],
        // Public traffic is a create's choice, not the template's.
        allowPublicTraffic: true,
      });
      const own = await Sandbox.create(snap.snapshotId, {
        timeoutMs: 300_000,
        network: { denyOut: ["2.0.0.0/8"] },
      });
      made.push(own);
      expect((await Sandbox.getInfo(own.sandboxId)).network).toMatchObject({
        allowOut: [],
        denyOut: ["2.0.0.0/8"],
      });
      await Sandbox.deleteSnapshot(snap.snapshotId);

      const forks = await sbx.fork({ count: 1, timeoutMs: 300_000 });
      for (const fork of forks) {
        if (fork instanceof Error) throw fork;
        made.push(fork);
        // Each fork of a private sandbox is private with a token of its own.
        expect(fork.trafficAccessToken).toMatch(/^[0-9a-f]{48}$/);
        expect(fork.trafficAccessToken).not.toBe(sbx.trafficAccessToken);
        expect((await Sandbox.getInfo(fork.sandboxId)).network).toMatchObject({
          allowOut: ["1.0.0.0/8"],
          denyOut: ["0.0.0.0/0"],
          allowPublicTraffic: false,
        });
      }
    } finally {
      for (const s of made) await s.kill().catch(() => undefined);
    }
  }, 300_000);

  it("@wrenn/sdk and the CLI: network at create, in info, and updated (/v1)", async () => {
    const client = new ApiClient({ apiUrl: stack.url, apiKey: stack.apiKey, timeoutMs: 60_000 });
    const env = { WRENN_API_URL: stack.url, WRENN_API_KEY: stack.apiKey };
    const sbx = await WrennSandbox.create({
      client,
      network: { allowOut: ["1.1.1.1"], allowInternetAccess: false, allowPublicTraffic: false },
    });
    try {
      expect(sbx.trafficAccessToken).toMatch(/^[0-9a-f]{48}$/);
      expect((await sbx.getInfo()).network).toEqual({
        allowOut: ["1.1.1.1/32"],
        denyOut: ["0.0.0.0/0"],
        allowInternetAccess: false,
        allowPublicTraffic: false,
        maskRequestHost: null,
      });
      const info = await runWrenn(["sandbox", "info", sbx.sandboxId], env);
      expect(info.stdout).toMatch(/allow out: +1\.1\.1\.1\/32/);
      expect(info.stdout).toMatch(/traffic: +private/);
      const shown = await runWrenn(["sandbox", "network", sbx.sandboxId, "--json"], env);
      expect(JSON.parse(shown.stdout)).toMatchObject({ denyOut: ["0.0.0.0/0"] });

      const set = await runWrenn(
        ["sandbox", "network", sbx.sandboxId, "--deny-out", "9.9.9.0/24", "--json"],
        env,
      );
      expect(set.code, set.stderr).toBe(0);
      expect(JSON.parse(set.stdout)).toMatchObject({ allowOut: [], denyOut: ["9.9.9.0/24"] });
      expect((await sbx.updateNetwork({})).network).toMatchObject({ allowOut: [], denyOut: [] });
    } finally {
      await sbx.kill();
    }
  }, 240_000);
});
