import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { WrennError } from "@wrenn/shared";

/** Whether a process with this pid exists (signal 0 checks without sending). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Claims an embedded database directory for this process: PGlite is single-process, so a
 * second opener (a host command while the control plane serves) would corrupt it. The
 * claim is `<dir>.lock` holding the owner's pid; one left by a process that is gone is
 * taken over. Returns the release function.
 */
export function lockDataDir(dir: string): () => void {
  const path = `${dir}.lock`;
  const mine = String(process.pid);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, mine, { flag: "wx" });
      return () => {
        try {
          if (readFileSync(path, "utf8") === mine) rmSync(path, { force: true });
        } catch {
          // already gone
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number(readFileSync(path, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new WrennError(
          "failed_precondition",
          `the database ${dir} is in use by process ${owner} (a running control plane); stop it first`,
        );
      }
      rmSync(path, { force: true });
    }
  }
  throw new WrennError("failed_precondition", `could not claim the database ${dir} (${path})`);
}
