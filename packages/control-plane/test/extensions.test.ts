import { defineRoute, type Extension, type ServerContext } from "@wrenn/control-plane";
import { WrennError } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { type CpFixture, startControlPlane } from "./helpers/cp-fixture.js";
import { openTestDatabase, type TestDatabase } from "./helpers/test-databases.js";

/** A small downstream extension: a route, a middleware and a worker, run by a real server. */
function usageExtension(state: { ticks: number; seen: string[]; ctx?: ServerContext }): Extension {
  return {
    name: "usage",
    register(registry, ctx) {
      state.ctx = ctx;
      registry.middleware(async (request) => {
        state.seen.push(request.url);
        if (request.headers["x-blocked"] === "yes")
          throw new WrennError("permission_denied", "blocked by policy");
      });
      registry.route(
        defineRoute({
          method: "GET",
          path: "/v1/ext-usage",
          summary: "Sandboxes per state for the caller's team",
          tag: "Usage",
          auth: "api_key",
          query: z.object({ state: z.string().optional() }),
          responses: {
            200: { description: "Counts", schema: z.object({ team_id: z.string(), sandboxes: z.number() }) },
          },
          handler: async (rc) => {
            const rows = await ctx.services.sandboxes.list(rc.principal, { limit: 1000 });
            return { team_id: rc.principal.teamId, sandboxes: rows.length };
          },
        }),
      );
      registry.worker({
        name: "usage-ticker",
        intervalMs: 20,
        async tick() {
          state.ticks += 1;
        },
      });
    },
  };
}

describe("extensions", () => {
  let t: TestDatabase;
  let fx: CpFixture;
  const state = { ticks: 0, seen: [] as string[] } as { ticks: number; seen: string[]; ctx?: ServerContext };

  beforeAll(async () => {
    t = await openTestDatabase("pglite");
    fx = await startControlPlane(t.database, { extensions: [usageExtension(state)], workers: true });
  });
  afterAll(async () => {
    await fx?.close();
    await t?.dispose();
  });

  it("receives the server context", () => {
    expect(state.ctx?.services.sandboxes).toBeDefined();
    // Services and events only: the raw database and the agents' clients stay inside.
    expect(Object.keys(state.ctx ?? {}).sort()).toEqual([
      "audit",
      "config",
      "events",
      "logger",
      "now",
      "services",
    ]);
    expect(state.ctx?.events).toBeDefined();
    expect(state.ctx?.audit).toBeDefined();
    expect(state.ctx?.config.port).toBe(0);
  });

  it("serves its route behind the core auth, documented in /openapi.json", async () => {
    const res = await fx.as(fx.adminKey)("GET", "/v1/ext-usage");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ team_id: fx.adminTeamId, sandboxes: 0 });
    expect((await fx.as(null)("GET", "/v1/ext-usage")).status).toBe(401);
    const doc = (await (await fetch(`${fx.url}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    expect(doc.paths["/v1/ext-usage"]).toBeDefined();
  });

  it("runs its middleware before core routes, able to refuse a request", async () => {
    state.seen.length = 0;
    const blocked = await fx.as(fx.adminKey)<{ error: { code: string } }>("GET", "/v1/sandboxes", undefined, {
      "x-blocked": "yes",
    });
    expect(blocked.status).toBe(403);
    expect(blocked.body.error.code).toBe("permission_denied");
    expect(state.seen).toContain("/v1/sandboxes");
  });

  it("runs its background worker", async () => {
    const before = state.ticks;
    await new Promise((r) => setTimeout(r, 200));
    expect(state.ticks).toBeGreaterThan(before);
  });
});
