import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import {
  verifyWebhook,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "@wrenn/control-plane";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

interface Received {
  headers: IncomingMessage["headers"];
  body: string;
}

/** A real HTTP receiver: answers with the next status in `statuses` (then 200), records every delivery. */
async function startReceiver(
  statuses: number[] = [],
): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => {
      body += c;
    });
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      res.statusCode = statuses.shift() ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, received, server };
}

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe("webhook channels", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  const servers: Server[] = [];

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, { config: { webhookRetryBaseMs: 20, webhookMaxAttempts: 3 } });
  });
  afterAll(async () => {
    await fx?.close();
    for (const s of servers) s.close();
    await t?.dispose();
  });

  it("delivers a team's events as JSON signed with HMAC-SHA256 over timestamp.body", async () => {
    const receiver = await startReceiver();
    servers.push(receiver.server);
    const team = await fx.newTeam("hooks");
    const channel = await fx.as(team.key)<{ id: string; secret: string }>("POST", "/v1/channels", {
      name: "ops",
      url: receiver.url,
      events: ["sandbox.created", "host.down"],
    });
    expect(channel.status).toBe(201);
    expect(channel.body.secret).toMatch(/^whsec_/);
    const listed = await fx.as(team.key)("GET", "/v1/channels");
    expect(JSON.stringify(listed.body)).not.toContain(channel.body.secret);

    const other = await fx.newTeam("other");
    fx.cp.context.events.publish("sandbox.created", other.teamId, { sandbox_id: "not-for-this-team" });
    fx.cp.context.events.publish("sandbox.paused", team.teamId, { sandbox_id: "filtered-out" });
    fx.cp.context.events.publish("sandbox.created", team.teamId, { sandbox_id: "isb1" });

    const got = await waitFor("a delivery", () => receiver.received[0]);
    const timestamp = String(got.headers[WEBHOOK_TIMESTAMP_HEADER]);
    const signature = String(got.headers[WEBHOOK_SIGNATURE_HEADER]);
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers[WEBHOOK_EVENT_HEADER]).toBe("sandbox.created");
    expect(verifyWebhook(channel.body.secret, timestamp, got.body, signature)).toBe(true);
    expect(verifyWebhook(channel.body.secret, timestamp, got.body.replace("isb1", "isb2"), signature)).toBe(
      false,
    );
    expect(verifyWebhook("whsec_wrong", timestamp, got.body, signature)).toBe(false);
    expect(verifyWebhook(channel.body.secret, String(Number(timestamp) - 3600), got.body, signature)).toBe(
      false,
    );
    expect(JSON.parse(got.body)).toMatchObject({
      type: "sandbox.created",
      team_id: team.teamId,
      data: { sandbox_id: "isb1" },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(receiver.received).toHaveLength(1);

    const deliveries = await waitFor("delivered status", async () => {
      const res = await fx.as(team.key)<{ items: { status: string; attempts: number }[] }>(
        "GET",
        `/v1/channels/${channel.body.id}/deliveries`,
      );
      return res.body.items[0]?.status === "delivered" ? res.body.items : undefined;
    });
    expect(deliveries).toMatchObject([{ status: "delivered", attempts: 1 }]);
  });

  it("retries a failing receiver with backoff and records each attempt", async () => {
    const receiver = await startReceiver([500, 503]);
    servers.push(receiver.server);
    const team = await fx.newTeam("flaky");
    const channel = await fx.as(team.key)<{ id: string }>("POST", "/v1/channels", {
      name: "flaky",
      url: receiver.url,
    });
    fx.cp.context.events.publish("host.down", team.teamId, { host_id: "h" });
    const delivered = await waitFor("three attempts", async () => {
      const res = await fx.as(team.key)<{ items: { status: string; attempts: number }[] }>(
        "GET",
        `/v1/channels/${channel.body.id}/deliveries`,
      );
      return res.body.items[0]?.status === "delivered" ? res.body.items[0] : undefined;
    });
    expect(delivered.attempts).toBe(3);
    expect(receiver.received).toHaveLength(3);
    const ids = new Set(receiver.received.map((r) => JSON.parse(r.body).id));
    expect(ids.size).toBe(1);
  });

  it("gives up after the last attempt without blocking the API", async () => {
    const team = await fx.newTeam("dead-end");
    // Nothing listens on port 9 (discard): every attempt fails.
    const channel = await fx.as(team.key)<{ id: string }>("POST", "/v1/channels", {
      name: "dead",
      url: "http://127.0.0.1:9/hook",
    });
    const started = Date.now();
    fx.cp.context.events.publish("sandbox.destroyed", team.teamId, { sandbox_id: "x" });
    const health = await fx.as(null)("GET", "/health");
    expect(health.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);
    const failed = await waitFor("failed status", async () => {
      const res = await fx.as(team.key)<{
        items: { status: string; attempts: number; last_error: string }[];
      }>("GET", `/v1/channels/${channel.body.id}/deliveries`);
      return res.body.items[0]?.status === "failed" ? res.body.items[0] : undefined;
    });
    expect(failed.attempts).toBe(3);
    expect(failed.last_error).toBeTruthy();
  });
});
