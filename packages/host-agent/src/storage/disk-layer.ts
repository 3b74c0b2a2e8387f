/** Copy-on-write root disks: one read-only base per template, one writable overlay per sandbox. */
export interface DiskLayerStore {
  /** Creates a qcow2 overlay backed by the (never written) base image; returns its path. */
  createOverlay(sandboxId: string, basePath: string, sizeMiB: number): Promise<string>;
  /** Deletes the overlay; idempotent. */
  removeOverlay(sandboxId: string): Promise<void>;
}
