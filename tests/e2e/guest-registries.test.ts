/**
 * Install steps from inside a sandbox against the real package registries (Debian's and npm's),
 * through the host's NAT, the gateway's DNS and whatever TLS-intercepting network the host sits
 * behind (the image trusts the build host's extra CAs). Opt-in: it reaches outside this
 * machine, which the suite's other network tests never do.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

const enabled = process.env.WRENN_TEST_REGISTRIES === "1";
const INSTALL_TIMEOUT_MS = 10 * 60_000;

describe.skipIf(!enabled)(
  "guest installs from the package registries (skipped unless WRENN_TEST_REGISTRIES=1)",
  () => {
    let fx: AgentFixture;
    let id = "";

    beforeAll(async () => {
      fx = await startAgent({ netNamePrefix: "wreg", firstSlot: 1700, maxSlots: 2 });
      const created = await fx.client.createSandbox({ image: "base" });
      id = created.sandbox?.sandboxId ?? "";
    }, 400_000);

    afterAll(async () => {
      const dir = fx?.dataDir ?? "";
      await fx?.close();
      expect(findHostLeftovers(dir, "wreg")).toEqual(NO_LEFTOVERS);
    }, 120_000);

    /** Runs `command` as root, printing its output's tail (the proof a reader wants to see). */
    async function run(command: string): Promise<string> {
      const res = await exec(fx, id, command, { user: "root", timeoutMs: INSTALL_TIMEOUT_MS });
      const out = `${res.stdout}${res.stderr}`;
      console.log(`$ ${command} (exit ${res.exitCode})\n${out.trim().split("\n").slice(-8).join("\n")}`);
      expect(res.exitCode, out.slice(-2000)).toBe(0);
      return res.stdout;
    }

    it(
      "apt-get update && apt-get install -y jq",
      async () => {
        await run("apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y jq");
        expect((await run("echo '{\"a\":41}' | jq '.a + 1'")).trim()).toBe("42");
      },
      INSTALL_TIMEOUT_MS,
    );

    it(
      "npm install -g cowsay (npm over HTTPS from Node, with the image's CA trust)",
      async () => {
        await run("npm install -g cowsay");
        expect(await run("cowsay wrenn")).toContain("wrenn");
      },
      INSTALL_TIMEOUT_MS,
    );

    // PyPI is not among the registries this network reaches: pip is checked without a download.
    it("pip is ready for pip install steps (system Python, PEP 668 lifted)", async () => {
      expect(await run("pip --version")).toMatch(/^pip \d+/);
      expect(await run("pip config list")).toContain("break-system-packages='true'");
    });
  },
);
