import { execFile } from "node:child_process";
import { access, readFile, realpath } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** The guest image guest/build.sh leaves under `<images>/<name>/current`, pinned to one build. */
export interface TestGuestImage {
  dir: string;
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
  /** The image's own kernel arguments (init=...). */
  kernelArgs: string;
  /** The line envd prints once it listens. */
  readyLine: string;
}

export type GuestImageLookup =
  | { image: TestGuestImage; skipReason?: undefined }
  | { image?: undefined; skipReason: string };

/**
 * Finds the built guest image (WRENN_IMAGES_DIR, else $WRENN_DIR/images, else ~/.wrenn/images;
 * template "base", else "default"). `current` is resolved once so a rebuild landing mid-test
 * does not swap the rootfs under an overlay. CI builds the image first, so the skip only
 * happens on a machine that never ran guest/build.sh.
 */
export async function findGuestImage(): Promise<GuestImageLookup> {
  const imagesDir =
    process.env.WRENN_IMAGES_DIR || join(process.env.WRENN_DIR || join(homedir(), ".wrenn"), "images");
  for (const name of ["base", "default"]) {
    const dir = await realpath(join(imagesDir, name, "current")).catch(() => undefined);
    if (!dir) continue;
    const image: TestGuestImage = {
      dir,
      kernelPath: join(dir, "vmlinuz"),
      initrdPath: join(dir, "initrd.img"),
      rootfsPath: join(dir, "rootfs.ext4"),
      kernelArgs: "init=/usr/local/sbin/wrenn-init",
      readyLine: "envd listening",
    };
    const missing: string[] = [];
    for (const path of [image.kernelPath, image.initrdPath, image.rootfsPath]) {
      if (
        !(await access(path).then(
          () => true,
          () => false,
        ))
      )
        missing.push(path);
    }
    if (missing.length > 0)
      return { skipReason: `guest image at ${dir} is incomplete: ${missing.join(", ")} missing` };
    try {
      const manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as {
        kernelArgs?: unknown;
        envd?: { readyLine?: unknown };
      };
      if (typeof manifest.kernelArgs === "string") image.kernelArgs = manifest.kernelArgs;
      if (typeof manifest.envd?.readyLine === "string") image.readyLine = manifest.envd.readyLine;
    } catch {}
    return { image };
  }
  return {
    skipReason: `no guest image under ${imagesDir}/{base,default}/current (build it with guest/build.sh)`,
  };
}

/** A qcow2 copy-on-write layer over the image's read-only rootfs. */
export async function createOverlay(image: TestGuestImage, path: string): Promise<void> {
  await run("qemu-img", ["create", "-q", "-f", "qcow2", "-F", "raw", "-b", image.rootfsPath, path]);
}
