import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type SandboxRecord, SandboxRecordStore } from "../src/sandbox/sandbox-record.js";

function record(id: string): SandboxRecord {
  return {
    id,
    image: "base",
    state: "running",
    resources: { vcpus: 1, memoryMiB: 512, diskMiB: 2048 },
    createdAt: new Date(0).toISOString(),
    timeoutSec: 60,
    timeoutAction: "pause",
    expiresAt: new Date(60_000).toISOString(),
    metadata: {},
    envVars: {},
    envdAccessToken: "tok",
    defaultUser: "user",
    defaultWorkdir: "",
    runDir: "/nonexistent",
  };
}

describe("SandboxRecordStore (real files)", () => {
  let dir: string;
  let store: SandboxRecordStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-records-"));
    store = new SandboxRecordStore(dir);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("round-trips a record", async () => {
    await store.save(record("sbx-new"));
    const { records, unreadable } = await store.loadAll();
    expect(unreadable).toEqual([]);
    expect(records).toEqual([record("sbx-new")]);
  });

  it("loads a record an older agent wrote (image under `template`)", async () => {
    const { image, ...rest } = record("sbx-old");
    mkdirSync(join(dir, "sbx-old"));
    writeFileSync(join(dir, "sbx-old", "record.json"), JSON.stringify({ ...rest, template: image }));
    const { records, unreadable } = await store.loadAll();
    expect(unreadable).toEqual([]);
    expect(records).toEqual([record("sbx-old")]);
    expect(records[0]).not.toHaveProperty("template");
  });

  it("reports a record that names no image as unreadable", async () => {
    const { image: _image, ...rest } = record("sbx-bad");
    mkdirSync(join(dir, "sbx-bad"));
    writeFileSync(join(dir, "sbx-bad", "record.json"), JSON.stringify(rest));
    expect(await store.loadAll()).toEqual({ records: [], unreadable: ["sbx-bad"] });
  });
});
