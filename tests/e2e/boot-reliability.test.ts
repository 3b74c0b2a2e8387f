import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

// Without tsc_early_khz 22 % of TCG boots hung. Eight boots here catch that regression with 86 %
// probability on their own; with the other cold boots of a suite run (the host's image snapshot
// when its cache is empty, the files that cold-boot on purpose: about 6) over 97 %. The other
// files' agents take the image snapshot from the host cache and boot nothing.
const BOOTS = 8;
const AT_ONCE = 2;

/**
 * Without tsc_early_khz about one TCG boot in five hangs silently on this kind of host.
 * Cold boots in a row must all reach envd (create only succeeds once envd answers).
 */
describe("cold boot reliability", () => {
  let fx: AgentFixture;
  beforeAll(async () => {
    // Cold boots are what this measures: creates must not restore an image snapshot.
    fx = await startAgent({ envdReadyTimeoutMs: 90_000, imageSnapshots: false });
  });
  afterAll(async () => {
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it(`boots ${BOOTS} sandboxes, each reaching envd`, async () => {
    let booted = 0;
    for (let round = 0; round < BOOTS / AT_ONCE; round++) {
      await Promise.all(
        Array.from({ length: AT_ONCE }, async () => {
          const { sandbox } = await fx.client.createSandbox({ image: "base" });
          const id = sandbox?.sandboxId ?? "";
          expect((await exec(fx, id, "echo up")).stdout).toBe("up\n");
          await fx.client.destroySandbox({ sandboxId: id });
          booted += 1;
        }),
      );
    }
    expect(booted).toBe(BOOTS);
  }, 900_000);
});
