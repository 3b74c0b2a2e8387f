import { access, readdir, readFile, realpath } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";

/** A built guest image as guest/build.sh leaves it under `<imagesDir>/<name>/current/`. */
export interface GuestImage {
  name: string;
  /** Resolved directory of this build (content-addressed). */
  dir: string;
  kernelPath: string;
  initrdPath: string;
  rootfsPath: string;
  /** Extra kernel arguments the image asks for (from manifest.json), if any. */
  kernelArgs: string;
  manifest: Record<string, unknown>;
}

const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Finds guest images by name. Reads the disk on every lookup: builds can land while the agent runs. */
export class ImageCatalog {
  constructor(private readonly imagesDir: string) {}

  async get(name: string): Promise<GuestImage> {
    if (!NAME_RE.test(name)) {
      throw new WrennError(
        "invalid_argument",
        `image name "${name}" is not valid (lowercase letters, digits, . _ -)`,
      );
    }
    const link = join(this.imagesDir, name, "current");
    let dir: string;
    try {
      dir = await realpath(link);
    } catch {
      throw new WrennError("not_found", `image "${name}" not found on this host`);
    }
    const image: GuestImage = {
      name,
      dir,
      kernelPath: join(dir, "vmlinuz"),
      initrdPath: join(dir, "initrd.img"),
      rootfsPath: join(dir, "rootfs.ext4"),
      kernelArgs: "",
      manifest: {},
    };
    for (const path of [image.kernelPath, image.initrdPath, image.rootfsPath]) {
      try {
        await access(path);
      } catch {
        throw new WrennError("failed_precondition", `image "${name}" is incomplete: ${path} is missing`);
      }
    }
    try {
      image.manifest = JSON.parse(await readFile(join(dir, "manifest.json"), "utf8")) as Record<
        string,
        unknown
      >;
      const args = image.manifest.kernelArgs;
      if (typeof args === "string") image.kernelArgs = args;
    } catch {
      // A manifest is informative only; the three files above are what boots.
    }
    return image;
  }

  async list(): Promise<string[]> {
    const names = await readdir(this.imagesDir).catch(() => [] as string[]);
    const usable: string[] = [];
    for (const name of names) {
      try {
        await this.get(name);
        usable.push(name);
      } catch {}
    }
    return usable.sort();
  }
}
