import { open, readFile } from "node:fs/promises";
import { runCommand } from "./run-command.js";

/**
 * A volume's storage on the host: a sparse ext4 image, loop-mounted. The image's size is the
 * volume's size limit (the host kernel has no quota support); what to create where is decided
 * by volumes/.
 */

const MKFS_TIMEOUT_MS = 60_000;
const MOUNT_TIMEOUT_MS = 20_000;

/**
 * Creates a sparse file of `sizeMiB` and an ext4 file system in it, owned at its root by
 * `owner` (uid:gid). `-m 0`: no blocks reserved for root, whose writes over NFS
 * (No_Root_Squash) would otherwise go past the size users see.
 */
export async function createExt4Image(path: string, sizeMiB: number, owner: string): Promise<void> {
  const file = await open(path, "wx");
  try {
    await file.truncate(sizeMiB * 1024 * 1024);
  } finally {
    await file.close();
  }
  await runCommand("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", `root_owner=${owner}`, path], {
    timeoutMs: MKFS_TIMEOUT_MS,
  });
}

/** Loop-mounts an image (the loop device is released again when it is unmounted). */
export async function mountImage(image: string, dir: string): Promise<void> {
  await runCommand("mount", ["-t", "ext4", "-o", "loop,nosuid,nodev,noexec", image, dir], {
    timeoutMs: MOUNT_TIMEOUT_MS,
  });
}

export async function unmount(dir: string): Promise<void> {
  await runCommand("umount", [dir], { timeoutMs: MOUNT_TIMEOUT_MS });
}

/** The host's mount points (field 5 of /proc/self/mountinfo, octal escapes decoded). */
export async function mountPoints(): Promise<Set<string>> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points = new Set<string>();
  for (const line of text.split("\n")) {
    const field = line.split(" ")[4];
    if (field)
      points.add(
        field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))),
      );
  }
  return points;
}
