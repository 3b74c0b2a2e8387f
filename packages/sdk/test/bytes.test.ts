import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { base64ToBytes, bytesToBase64, concatBytes, toBytes, utf8Text } from "../src/bytes.js";

/** The SDK's byte helpers use only platform globals; Node's Buffer is the reference here. */
describe("byte helpers", () => {
  it("encode and decode base64 as Buffer does, past the chunk size and for every byte value", () => {
    for (const size of [0, 1, 2, 3, 255, 0x8000, 0x8000 * 3 + 7]) {
      const bytes = new Uint8Array(randomBytes(size));
      const b64 = bytesToBase64(bytes);
      expect(b64).toBe(Buffer.from(bytes).toString("base64"));
      expect(base64ToBytes(b64)).toEqual(bytes);
    }
    const every = Uint8Array.from({ length: 256 }, (_, i) => i);
    expect(base64ToBytes(bytesToBase64(every))).toEqual(every);
  });

  it("turn text into UTF-8 and back, replacing what is not UTF-8", () => {
    expect(toBytes("héllo ✓")).toEqual(new Uint8Array(Buffer.from("héllo ✓", "utf8")));
    expect(utf8Text(toBytes("héllo ✓"))).toBe("héllo ✓");
    expect(utf8Text(new Uint8Array([0x68, 0xff, 0x69]))).toBe("h\uFFFDi");
  });

  it("concatenate chunks", () => {
    expect(concatBytes([toBytes("ab"), new Uint8Array(), toBytes("c")])).toEqual(toBytes("abc"));
    expect(concatBytes([])).toEqual(new Uint8Array());
  });
});
