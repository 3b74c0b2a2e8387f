import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { commandFailure, runCommand } from "../system/run-command.js";
import type { DiskLayerStore } from "./disk-layer.js";

/**
 * qcow2 copy-on-write layers over read-only raw base images: one per sandbox at
 * `<sandboxesDir>/<id>/rootfs.qcow2`. QEMU opens the base read-only through the
 * backing chain, so a base is never written.
 */
export class Qcow2OverlayStore implements DiskLayerStore {
  private readonly baseSizes = new Map<string, number>();

  constructor(private readonly sandboxesDir: string) {}

  overlayPath(sandboxId: string): string {
    return join(this.sandboxesDir, sandboxId, "rootfs.qcow2");
  }

  private async baseVirtualSize(basePath: string): Promise<number> {
    const key = `${basePath}:${(await stat(basePath)).mtimeMs}`;
    const known = this.baseSizes.get(key);
    if (known !== undefined) return known;
    const { stdout } = await runCommand("qemu-img", ["info", "--output=json", "-f", "raw", basePath]);
    const size = (JSON.parse(stdout) as { "virtual-size": number })["virtual-size"];
    this.baseSizes.set(key, size);
    return size;
  }

  async createOverlay(sandboxId: string, basePath: string, sizeMiB: number): Promise<string> {
    const baseBytes = await this.baseVirtualSize(basePath);
    if (sizeMiB * 1024 * 1024 < baseBytes) {
      throw new WrennError(
        "invalid_argument",
        `disk_mib ${sizeMiB} is smaller than the template's disk (${Math.ceil(baseBytes / 1024 / 1024)} MiB)`,
      );
    }
    const path = this.overlayPath(sandboxId);
    await mkdir(join(this.sandboxesDir, sandboxId), { recursive: true });
    try {
      await runCommand("qemu-img", [
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        "raw",
        "-b",
        basePath,
        path,
        `${sizeMiB}M`,
      ]);
    } catch (err) {
      await rm(path, { force: true });
      throw commandFailure(`create disk layer for ${sandboxId}`, err);
    }
    return path;
  }

  async removeOverlay(sandboxId: string): Promise<void> {
    await rm(this.overlayPath(sandboxId), { force: true });
  }

  /** Sandbox ids that have an overlay on disk. */
  async listOverlays(): Promise<string[]> {
    const ids = await readdir(this.sandboxesDir).catch(() => [] as string[]);
    const found: string[] = [];
    for (const id of ids) {
      if (
        await stat(this.overlayPath(id)).then(
          () => true,
          () => false,
        )
      )
        found.push(id);
    }
    return found;
  }
}
