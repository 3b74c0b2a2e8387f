import { describe, expect, it } from "vitest";
import {
  EnvelopeBoundary,
  endStreamWithError,
  OpenExchanges,
  type StopReason,
  stopReason,
} from "../src/traffic/open-exchanges.js";

function envelope(flags: number, payload: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(flags, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

describe("EnvelopeBoundary", () => {
  it("is at a boundary only between whole envelopes, however the bytes are split", () => {
    const stream = Buffer.concat([envelope(0, Buffer.alloc(300, 7)), envelope(0, Buffer.from("x"))]);
    for (const cut of [1, 3, 5, 6, 200, 305, 306, 308]) {
      const seen = new EnvelopeBoundary();
      seen.observe(stream.subarray(0, cut));
      expect(seen.atBoundary(), `after ${cut} bytes`).toBe(cut === 305);
      seen.observe(stream.subarray(cut));
      expect(seen.atBoundary()).toBe(true);
    }
    const empty = new EnvelopeBoundary();
    empty.observe(envelope(0, new Uint8Array()));
    expect(empty.atBoundary()).toBe(true);
  });

  it("writes an end-of-stream envelope with the error as JSON", () => {
    const bytes = endStreamWithError("unavailable", "sandbox s1 stopped running");
    expect(bytes[0]).toBe(0x02);
    expect(bytes.readUInt32BE(1)).toBe(bytes.length - 5);
    expect(JSON.parse(bytes.subarray(5).toString())).toEqual({
      error: { code: "unavailable", message: "sandbox s1 stopped running" },
    });
  });
});

describe("OpenExchanges", () => {
  it("cuts the exchanges of a sandbox whose address went away or changed, and keeps the rest", async () => {
    const addresses = new Map([
      ["a", "10.0.0.1"],
      ["b", "10.0.0.2"],
    ]);
    const exchanges = new OpenExchanges(async (id) => addresses.get(id), 20);
    const cut: string[] = [];
    const forgetA = exchanges.add("a", {
      address: "10.0.0.1",
      cut: (reason) => cut.push(`a: ${reason.message}`),
    });
    exchanges.add("b", { address: "10.0.0.2", cut: (reason) => cut.push(`b: ${reason.message}`) });
    await new Promise((r) => setTimeout(r, 60));
    expect(cut).toEqual([]);
    addresses.delete("b");
    await new Promise((r) => setTimeout(r, 60));
    expect(cut[0]).toMatch(/^b: sandbox b was killed or timed out; the connection to it was terminated$/);
    forgetA();
    addresses.set("a", "10.0.0.9");
    await new Promise((r) => setTimeout(r, 60));
    expect(cut.filter((c) => c.startsWith("a:"))).toEqual([]);
    exchanges.close();
  });

  it("says why: a sandbox gone ends as a terminated connection, a paused one as unavailable", async () => {
    const states = new Map<string, string>([["p", "paused"]]);
    const exchanges = new OpenExchanges(
      async () => undefined,
      20,
      (id) => states.get(id),
    );
    // A real exchange forgets itself once cut; these stay, so each is cut on every check.
    const reasons = new Map<string, StopReason>();
    exchanges.add("gone", { address: "10.0.0.1", cut: (r) => reasons.set("gone", r) });
    exchanges.add("p", { address: "10.0.0.2", cut: (r) => reasons.set("p", r) });
    await expect.poll(() => reasons.size).toBe(2);
    exchanges.close();
    const byCode = Object.fromEntries([...reasons.values()].map((r) => [r.code, r.message]));
    // "terminated" is what makes the e2b SDK probe the sandbox's health and say it was killed.
    expect(byCode.unknown).toMatch(/sandbox gone was killed .*terminated/);
    expect(byCode.unavailable).toBe("sandbox p was paused");
    expect(stopReason("x", "error")).toEqual({
      code: "unavailable",
      message: "sandbox x stopped: its VM exited",
    });
  });
});
