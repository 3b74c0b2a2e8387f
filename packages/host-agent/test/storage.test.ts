import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Qcow2OverlayStore } from "../src/storage/qcow2-overlays.js";

const MIB = 1024 * 1024;

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

describe("Qcow2OverlayStore (real qemu-img)", () => {
  let dir: string;
  let sandboxesDir: string;
  let basePath: string;
  let store: Qcow2OverlayStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "wrenn-storage-"));
    sandboxesDir = join(dir, "agent", "sandboxes");
    // A 64 MiB raw base with recognisable content at the start; behind a `current` symlink, as
    // the image catalog lays bases out.
    const build = join(dir, "images", "base", "build-1");
    mkdirSync(build, { recursive: true });
    basePath = join(build, "rootfs.ext4");
    writeFileSync(basePath, Buffer.concat([randomBytes(MIB), Buffer.alloc(63 * MIB)]));
    symlinkSync("build-1", join(dir, "images", "base", "current"));
    store = new Qcow2OverlayStore(sandboxesDir, { maxSizeMiB: 4096 });
  });

  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    expect(() => statSync(dir)).toThrow();
  });

  it("creates an overlay backed by the real path of a base it makes read-only, and never writes the base", async () => {
    const before = { hash: sha256(basePath), mtimeMs: statSync(basePath).mtimeMs };
    const linked = join(dir, "images", "base", "current", "rootfs.ext4");
    const path = await store.createOverlay("sbx-one", linked, 128);
    expect(path).toBe(join(sandboxesDir, "sbx-one", "rootfs.qcow2"));
    expect(statSync(basePath).mode & 0o777).toBe(0o444);
    expect(statSync(path).mode & 0o777).toBe(0o600);

    const info = await store.inspectOverlay("sbx-one");
    // The symlink is resolved: the overlay pins this build even if `current` moves.
    expect(info).toMatchObject({ virtualSizeBytes: 128 * MIB, backingFile: basePath, backingFormat: "raw" });

    // Writes through the overlay (over the base's data and past its end) land in the overlay only.
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0xab 0 2M", "-c", "write -P 0xcd 100M 1M", path]);
    const readBack = execFileSync("qemu-io", ["-f", "qcow2", "-c", "read -P 0xab 0 2M", path], {
      encoding: "utf8",
    });
    expect(readBack).toContain("read 2097152/2097152 bytes");
    expect(sha256(basePath)).toBe(before.hash);
    expect(statSync(basePath).mtimeMs).toBe(before.mtimeMs);

    // A second sandbox from the same base sees the base's content, not the first one's writes.
    const other = await store.createOverlay("sbx-two", basePath, 64);
    const firstMiB = readFileSync(basePath).subarray(0, 16);
    const pattern = `0x${firstMiB[0]?.toString(16).padStart(2, "0")}`;
    const check = execFileSync("qemu-io", ["-f", "qcow2", "-c", `read -P ${pattern} 0 1`, other], {
      encoding: "utf8",
    });
    expect(check).toContain("read 1/1 bytes");
    expect(await store.listOverlays()).toEqual(["sbx-one", "sbx-two"]);
  });

  it("rejects a size below the base's virtual size, above the maximum, or not a whole MiB count", async () => {
    await expect(store.createOverlay("sbx-small", basePath, 63)).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("smaller than the template's disk (64 MiB)"),
    });
    await expect(store.createOverlay("sbx-big", basePath, 4097)).rejects.toMatchObject({
      code: "invalid_argument",
      message: expect.stringContaining("exceeds the maximum of 4096 MiB"),
    });
    await expect(store.createOverlay("sbx-frac", basePath, 64.5)).rejects.toMatchObject({
      code: "invalid_argument",
    });
    await expect(store.createOverlay("sbx-zero", basePath, 0)).rejects.toMatchObject({
      code: "invalid_argument",
    });
    // Exactly the base size is fine.
    await store.createOverlay("sbx-exact", basePath, 64);
    expect(await store.listOverlays()).toEqual(["sbx-exact"]);
  });

  it("removeOverlay is idempotent and leaves the sandbox directory to its owner", async () => {
    await store.createOverlay("sbx-rm", basePath, 64);
    await store.removeOverlay("sbx-rm");
    await store.removeOverlay("sbx-rm");
    await store.removeOverlay("sbx-never");
    expect(await store.listOverlays()).toEqual([]);
    expect(readdirSync(join(sandboxesDir, "sbx-rm"))).toEqual([]);
  });

  it("refuses to replace an existing overlay, bad ids and missing bases", async () => {
    await store.createOverlay("sbx-dup", basePath, 64);
    execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x11 0 64k", store.overlayPath("sbx-dup")]);
    await expect(store.createOverlay("sbx-dup", basePath, 64)).rejects.toMatchObject({
      code: "already_exists",
    });
    // The existing overlay (the sandbox's data) is untouched.
    const kept = execFileSync(
      "qemu-io",
      ["-f", "qcow2", "-c", "read -P 0x11 0 64k", store.overlayPath("sbx-dup")],
      {
        encoding: "utf8",
      },
    );
    expect(kept).toContain("read 65536/65536 bytes");
    for (const bad of ["../escape", "a/b", "", ".hidden"]) {
      await expect(store.createOverlay(bad, basePath, 64)).rejects.toMatchObject({
        code: "invalid_argument",
      });
    }
    await expect(store.createOverlay("sbx-nobase", join(dir, "missing.ext4"), 64)).rejects.toMatchObject({
      code: "not_found",
    });
    expect(await store.listOverlays()).toEqual(["sbx-dup"]);
  });

  it("lists nothing when the sandboxes directory does not exist yet", async () => {
    expect(await new Qcow2OverlayStore(join(dir, "nowhere")).listOverlays()).toEqual([]);
  });
});
