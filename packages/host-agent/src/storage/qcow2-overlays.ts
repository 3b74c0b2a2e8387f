import { chmod, mkdir, readdir, realpath, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import { commandFailure, runCommand } from "../drivers-system/run-command.js";
import type { BaseImage, BaseImageFormat, DiskLayerStore } from "./disk-layer.js";

const MIB = 1024 * 1024;
const OVERLAY_FILE = "rootfs.qcow2";
const QEMU_IMG_TIMEOUT_MS = 30_000;
/** Sandbox ids become directory names: one safe path component. */
const SANDBOX_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

export interface Qcow2OverlayStoreOptions {
  /** Default `qemu-img` from PATH. */
  qemuImgBinary?: string | undefined;
  /** Largest overlay accepted; default 1 TiB. */
  maxSizeMiB?: number | undefined;
}

/** What `qemu-img info` says about an overlay. */
export interface OverlayInfo {
  path: string;
  virtualSizeBytes: number;
  backingFile: string | undefined;
  backingFormat: string | undefined;
}

/**
 * qcow2 copy-on-write layers over read-only base images, one per sandbox at
 * `<sandboxesDir>/<id>/rootfs.qcow2`. A base is registered once: made read-only on disk
 * (0444), its real path and size remembered; QEMU and qemu-img open it read-only through the
 * backing chain, so it is never written. The sandbox directory itself belongs to the record store.
 */
export class Qcow2OverlayStore implements DiskLayerStore {
  private readonly bases = new Map<string, BaseImage & { key: string }>();
  private readonly qemuImg: string;
  private readonly maxSizeMiB: number;

  constructor(
    private readonly sandboxesDir: string,
    options: Qcow2OverlayStoreOptions = {},
  ) {
    this.qemuImg = options.qemuImgBinary ?? "qemu-img";
    this.maxSizeMiB = options.maxSizeMiB ?? 1024 * 1024;
  }

  overlayPath(sandboxId: string): string {
    return join(this.sandboxesDir, checkId(sandboxId), OVERLAY_FILE);
  }

  /**
   * Resolves a base image, makes it read-only on disk (chmod 0444) and reads its virtual size.
   * Cached per real path while its size and mtime stay the same.
   */
  async registerBase(basePath: string, format: BaseImageFormat = "raw"): Promise<BaseImage> {
    let path: string;
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      path = await realpath(basePath);
      info = await stat(path);
    } catch (err) {
      throw new WrennError("not_found", `base image ${basePath} does not exist`, { cause: err });
    }
    if (!info.isFile())
      throw new WrennError("invalid_argument", `base image ${basePath} is not a regular file`);
    const key = `${format}:${info.size}:${info.mtimeMs}`;
    const known = this.bases.get(path);
    if (known?.key === key) return { path, format, virtualSizeBytes: known.virtualSizeBytes };
    if ((info.mode & 0o222) !== 0) await chmod(path, 0o444);
    const virtualSizeBytes = format === "raw" ? info.size : await this.qcow2VirtualSize(path);
    this.bases.set(path, { key, path, format, virtualSizeBytes });
    return { path, format, virtualSizeBytes };
  }

  async createOverlay(
    sandboxId: string,
    basePath: string,
    sizeMiB: number,
    options: { baseFormat?: BaseImageFormat } = {},
  ): Promise<string> {
    const path = this.overlayPath(sandboxId);
    if (!Number.isInteger(sizeMiB) || sizeMiB < 1) {
      throw new WrennError(
        "invalid_argument",
        `disk size must be a positive whole number of MiB, got ${sizeMiB}`,
      );
    }
    if (sizeMiB > this.maxSizeMiB) {
      throw new WrennError(
        "invalid_argument",
        `disk size ${sizeMiB} MiB exceeds the maximum of ${this.maxSizeMiB} MiB`,
      );
    }
    const base = await this.registerBase(basePath, options.baseFormat ?? "raw");
    if (sizeMiB * MIB < base.virtualSizeBytes) {
      throw new WrennError(
        "invalid_argument",
        `disk size ${sizeMiB} MiB is smaller than the template's disk (${Math.ceil(base.virtualSizeBytes / MIB)} MiB)`,
      );
    }
    // qemu-img create would silently replace an existing overlay (and the sandbox's data).
    if (await exists(path))
      throw new WrennError("already_exists", `sandbox ${sandboxId} already has a disk layer`);
    await mkdir(join(this.sandboxesDir, sandboxId), { recursive: true });
    try {
      await runCommand(
        this.qemuImg,
        ["create", "-q", "-f", "qcow2", "-F", base.format, "-b", base.path, path, `${sizeMiB}M`],
        { timeoutMs: QEMU_IMG_TIMEOUT_MS },
      );
      await chmod(path, 0o600);
    } catch (err) {
      await rm(path, { force: true });
      throw commandFailure(`create disk layer for ${sandboxId}`, err);
    }
    return path;
  }

  async removeOverlay(sandboxId: string): Promise<void> {
    await rm(this.overlayPath(sandboxId), { force: true });
  }

  /** Sandbox ids that have an overlay on disk (for a sweep against the known sandboxes). */
  async listOverlays(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.sandboxesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const found: string[] = [];
    for (const id of entries) {
      if (SANDBOX_ID_RE.test(id) && (await exists(join(this.sandboxesDir, id, OVERLAY_FILE)))) found.push(id);
    }
    return found.sort();
  }

  /** Size and backing file of a sandbox's overlay. */
  async inspectOverlay(sandboxId: string): Promise<OverlayInfo> {
    const path = this.overlayPath(sandboxId);
    if (!(await exists(path))) throw new WrennError("not_found", `sandbox ${sandboxId} has no disk layer`);
    const info = await this.info(path, "qcow2");
    return {
      path,
      virtualSizeBytes: info["virtual-size"],
      backingFile: info["backing-filename"],
      backingFormat: info["backing-filename-format"],
    };
  }

  private async qcow2VirtualSize(path: string): Promise<number> {
    return (await this.info(path, "qcow2"))["virtual-size"];
  }

  private async info(
    path: string,
    format: BaseImageFormat,
  ): Promise<{ "virtual-size": number; "backing-filename"?: string; "backing-filename-format"?: string }> {
    try {
      // -U: no lock needed to read the header (a running VM holds the overlay's lock).
      const { stdout } = await runCommand(this.qemuImg, ["info", "-U", "--output=json", "-f", format, path], {
        timeoutMs: QEMU_IMG_TIMEOUT_MS,
      });
      return JSON.parse(stdout) as { "virtual-size": number };
    } catch (err) {
      throw commandFailure(`read image ${path}`, err);
    }
  }
}

function checkId(sandboxId: string): string {
  if (!SANDBOX_ID_RE.test(sandboxId))
    throw new WrennError("invalid_argument", `invalid sandbox id ${JSON.stringify(sandboxId)}`);
  return sandboxId;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}
