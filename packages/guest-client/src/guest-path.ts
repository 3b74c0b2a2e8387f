import { posix } from "node:path";
import { WrennError } from "@wrenn/shared";

/** Kernel pseudo-filesystems: not files, and reading some of them can hang or crash a guest. */
const PSEUDO_ROOTS = ["/proc", "/sys", "/dev"];

/**
 * Validates a path for the files API: absolute or home-relative, no NUL, bounded,
 * and not inside the guest's pseudo-filesystems. Returns it normalised.
 */
export function validateGuestPath(path: string): string {
  if (!path) throw new WrennError("invalid_argument", "path is required");
  if (path.length > 4096) throw new WrennError("invalid_argument", "path is longer than 4096 characters");
  if (path.includes("\0")) throw new WrennError("invalid_argument", "path contains a NUL byte");
  const normal = posix.normalize(path);
  if (normal.startsWith("/")) {
    for (const root of PSEUDO_ROOTS) {
      if (normal === root || normal.startsWith(`${root}/`)) {
        throw new WrennError(
          "permission_denied",
          `${normal} is outside the files API (${root} is not a file tree)`,
        );
      }
    }
  }
  return normal;
}
