/** Copy-on-write root disks: one read-only base per template, one writable overlay per sandbox. */
export interface DiskLayerStore {
  /**
   * Creates a copy-on-write overlay of `sizeMiB` (at least the base's virtual size) backed by
   * the base image, which is never written; returns its path.
   */
  createOverlay(
    sandboxId: string,
    basePath: string,
    sizeMiB: number,
    options?: { baseFormat?: BaseImageFormat },
  ): Promise<string>;
  /** Where a sandbox's overlay lives (it may not exist). */
  overlayPath(sandboxId: string): string;
  /** Deletes the overlay; idempotent. */
  removeOverlay(sandboxId: string): Promise<void>;
}

/** Formats a base image may have; always given explicitly (never probed: probing is unsafe). */
export type BaseImageFormat = "raw" | "qcow2";

/** A base image as registered: resolved path (symlinks followed) and size. */
export interface BaseImage {
  /** The real path (an image's `current` symlink resolved, so an overlay pins one build). */
  path: string;
  format: BaseImageFormat;
  virtualSizeBytes: number;
}
