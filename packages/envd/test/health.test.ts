import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

describe("envd /health", () => {
  let fx: EnvdFixture;
  beforeAll(async () => {
    fx = await startEnvd();
  });
  afterAll(() => fx.close());

  it("answers 204 without a token even when one is set", async () => {
    fx.envd.ctx.state.accessToken = "secret";
    const res = await fetch(`${fx.url}/health`);
    expect(res.status).toBe(204);
    fx.envd.ctx.state.accessToken = undefined;
  });

  it("answers 404 with the envd error body for an unknown path", async () => {
    const res = await fetch(`${fx.url}/nope`);
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 404, message: "no route /nope" });
  });

  it("connects the stock e2b SDK", async () => {
    const sandbox = await fx.connectSdk();
    expect(sandbox.sandboxId).toBe("debug_sandbox_id");
  });
});
