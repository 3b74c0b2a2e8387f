import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterEach, describe, expect, it } from "vitest";
import { SystemHelper } from "../src/system/system-helper.js";

// The real perl helper on this host. Only requests that change nothing are sent here (a
// development host's clock and RNG are not ours); the VM tests exercise clock and entropy.
describe("system helper", () => {
  const helpers: SystemHelper[] = [];
  function helper(perlPath?: string): SystemHelper {
    const h = new SystemHelper({ logger: createSilentLogger(), requestTimeoutMs: 5000, perlPath });
    helpers.push(h);
    return h;
  }
  afterEach(() => {
    for (const h of helpers.splice(0)) h.close();
  });

  it("starts once and answers requests in order over one process", async () => {
    const h = helper();
    await h.start();
    const pid = h.pid;
    expect(pid).toBeGreaterThan(0);
    await Promise.all([h.call("ping"), h.call("ping"), h.call("ping")]);
    expect(h.pid).toBe(pid);
  });

  it("reports a failed request as an error and keeps serving", async () => {
    const h = helper();
    await expect(h.call("bogus")).rejects.toThrow(/unknown request 'bogus'/);
    await expect(h.call("clock soon 0")).rejects.toThrow(/bad time/);
    await expect(h.call("entropy xyz")).rejects.toThrow(/bad entropy/);
    await h.call("ping");
  });

  it("restarts a helper that died", async () => {
    const h = helper();
    await h.start();
    const first = h.pid as number;
    process.kill(first, "SIGKILL");
    await new Promise((r) => setTimeout(r, 100));
    await h.call("ping");
    expect(h.pid).toBeGreaterThan(0);
    expect(h.pid).not.toBe(first);
  });

  it("fails with a typed error when the helper cannot run, and after close", async () => {
    const missing = helper("/nonexistent/perl");
    const err = await missing.call("ping").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WrennError);
    expect((err as WrennError).code).toBe("unavailable");
    const h = helper();
    await h.start();
    h.close();
    await expect(h.call("ping")).rejects.toThrow(/closed/);
  });
});
