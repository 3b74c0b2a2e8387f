import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdChild, startEnvdChild } from "./files-helpers.js";

const MiB = 1024 * 1024;
const FILE_MiB = 200;
/** Loose bound on envd's resident memory growth while moving the file. */
const MAX_RSS_GROWTH_BYTES = 100 * MiB;

/** Samples the child's RSS every few ms while `work` runs; returns the peak. */
async function peakRssDuring(envd: EnvdChild, work: () => Promise<void>): Promise<number> {
  let peak = envd.rssBytes();
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, envd.rssBytes());
    } catch {
      clearInterval(timer); // envd is gone; the transfer itself will fail the test.
    }
  }, 10);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return Math.max(peak, envd.rssBytes());
}

describe("envd streams large files with bounded memory", () => {
  let envd: EnvdChild;
  let dir: string;

  beforeAll(async () => {
    envd = await startEnvdChild();
    dir = mkdtempSync(join(tmpdir(), "wrenn-envd-mem-"));
  });
  afterAll(async () => {
    await envd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`uploads and downloads ${FILE_MiB} MB through the SDK`, { timeout: 180_000 }, async () => {
    const sdk = await Sandbox.create({ debug: true, sandboxUrl: envd.url });
    const path = join(dir, "big.bin");
    // Warm up both paths so lazily loaded code is not counted as growth.
    await sdk.files.write(join(dir, "warm.bin"), new Blob([randomBytes(MiB)]));
    await sdk.files.read(join(dir, "warm.bin"), { format: "bytes" });
    const baseline = envd.rssBytes();

    const sent = createHash("sha256");
    let produced = 0;
    const source = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (produced === FILE_MiB) return controller.close();
        const chunk = randomBytes(MiB);
        sent.update(chunk);
        produced++;
        controller.enqueue(new Uint8Array(chunk));
      },
    });
    const uploadPeak = await peakRssDuring(envd, async () => {
      await sdk.files.write(path, source);
    });
    expect(statSync(path).size).toBe(FILE_MiB * MiB);

    const received = createHash("sha256");
    let bytes = 0;
    const downloadPeak = await peakRssDuring(envd, async () => {
      const stream = await sdk.files.read(path, { format: "stream" });
      for await (const chunk of stream) {
        received.update(chunk);
        bytes += chunk.length;
      }
    });
    expect(bytes).toBe(FILE_MiB * MiB);
    expect(received.digest("hex")).toBe(sent.digest("hex"));

    const mb = (n: number) => (n / MiB).toFixed(1);
    console.log(
      `envd RSS baseline ${mb(baseline)} MiB; peak during ${FILE_MiB} MiB upload ${mb(uploadPeak)} MiB ` +
        `(+${mb(uploadPeak - baseline)}); peak during download ${mb(downloadPeak)} MiB (+${mb(downloadPeak - baseline)})`,
    );
    expect(uploadPeak - baseline).toBeLessThan(MAX_RSS_GROWTH_BYTES);
    expect(downloadPeak - baseline).toBeLessThan(MAX_RSS_GROWTH_BYTES);
  });
});
