import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import { SandboxState } from "@wrenn/proto";
import { WrennError } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { slotAddresses } from "../../packages/host-agent/src/network/slot-addresses.js";
import { type AgentFixture, exec, startAgent, TEST_FIRST_SLOT, TEST_NET_PREFIX } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/** The Connect code and registry code of an agent RPC's error, or of a guest call's WrennError. */
function codeOf(err: unknown): { code: Code; wrenn: string | null } {
  if (err instanceof WrennError) return { code: Code.Unknown, wrenn: err.code };
  const e = ConnectError.from(err);
  return { code: e.code, wrenn: e.metadata.get("wrenn-error-code") };
}

describe("host agent: bad input and failures", () => {
  let fx: AgentFixture;

  beforeAll(async () => {
    fx = await startAgent();
  });

  afterAll(async () => {
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("refuses requests without the host token", async () => {
    const err = await fx
      .clientWithToken("not-the-token-at-all")
      .listSandboxes({})
      .catch((e: unknown) => e);
    expect(codeOf(err).code).toBe(Code.Unauthenticated);
  });

  it.each([
    ["unknown image", { image: "no-such-image" }, "not_found"],
    ["malformed image name", { image: "../etc" }, "invalid_argument"],
    ["zero vCPUs", { image: "base", resources: { vcpus: 0 } }, "invalid_argument"],
    ["huge vCPUs", { image: "base", resources: { vcpus: 4096 } }, "invalid_argument"],
    ["zero memory", { image: "base", resources: { memoryMib: 0 } }, "invalid_argument"],
    ["huge memory", { image: "base", resources: { memoryMib: 10_000_000 } }, "invalid_argument"],
    ["disk below the image", { image: "base", resources: { diskMib: 300 } }, "invalid_argument"],
    ["bad env var name", { image: "base", envVars: { "1BAD=": "x" } }, "invalid_argument"],
    ["bad sandbox id", { image: "base", sandboxId: "Not Valid!" }, "invalid_argument"],
  ])("rejects %s with a clear code and leaves nothing", async (_name, req, wrenn) => {
    const err = await fx.client.createSandbox(req).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect(codeOf(err).wrenn).toBe(wrenn);
    expect((await fx.client.listSandboxes({})).sandboxes).toEqual([]);
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("skips a slot whose addresses something else on the host holds, and leaves that alone", async () => {
    // Another agent's overlapping range, or a crashed one's leftovers: a link with the first slot's address.
    const first = slotAddresses(TEST_FIRST_SLOT, TEST_NET_PREFIX);
    const foreign = "wtfx0";
    execFileSync("ip", ["tuntap", "add", "dev", foreign, "mode", "tap"]);
    try {
      execFileSync("ip", ["addr", "add", `${first.vethHostIp}/31`, "dev", foreign]);
      const { sandbox } = await fx.client.createSandbox({ image: "base" });
      const id = sandbox?.sandboxId ?? "";
      expect(sandbox?.hostIp).toBe(slotAddresses(TEST_FIRST_SLOT + 1, TEST_NET_PREFIX).hostReachableIp);
      expect((await exec(fx, id, "echo up")).stdout).toBe("up\n");
      await fx.client.destroySandbox({ sandboxId: id });
      expect(execFileSync("ip", ["-o", "addr", "show", "dev", foreign], { encoding: "utf8" })).toContain(
        first.vethHostIp,
      );
    } finally {
      execFileSync("ip", ["link", "del", foreign]);
    }
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  }, 120_000);

  it("answers not_found for an unknown sandbox on every sandbox call", async () => {
    const sandboxId = "does-not-exist";
    for (const call of [
      () => fx.client.getSandbox({ sandboxId }),
      () => fx.client.destroySandbox({ sandboxId }),
      () => exec(fx, sandboxId, "true"),
      async () => (await fx.guest(sandboxId)).readFile("/etc/hostname"),
      () => fx.client.pingSandbox({ sandboxId }),
    ]) {
      expect(codeOf(await call().catch((e: unknown) => e)).wrenn).toBe("not_found");
    }
  });

  it("notices a VMM killed by hand, reports the sandbox as error, and frees its resources", async () => {
    const { sandbox } = await fx.client.createSandbox({ image: "base" });
    const sandboxId = sandbox?.sandboxId ?? "";
    expect((await exec(fx, sandboxId, "echo alive")).stdout).toBe("alive\n");
    const pid = sandbox?.vmmPid ?? 0;
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain("qemu-system");
    execFileSync("kill", ["-9", String(pid)]);
    let state = SandboxState.RUNNING;
    for (let i = 0; i < 100 && state !== SandboxState.ERROR; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = (await fx.client.getSandbox({ sandboxId })).sandbox?.state ?? state;
    }
    const listed = (await fx.client.listSandboxes({})).sandboxes.find((s) => s.sandboxId === sandboxId);
    expect(listed?.state).toBe(SandboxState.ERROR);
    expect(listed?.error).toMatch(/exited unexpectedly/);
    const leftovers = findHostLeftovers(fx.dataDir);
    expect(leftovers.qemuProcesses).toEqual([]);
    expect(leftovers.namespaces).toEqual([]);
    expect(leftovers.slotLeases).toEqual([]);
    await fx.client.destroySandbox({ sandboxId });
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  }, 180_000);
});
