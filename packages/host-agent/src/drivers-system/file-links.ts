import { link, stat } from "node:fs/promises";
import { runCommand } from "./run-command.js";

const COPY_TIMEOUT_MS = 10 * 60_000;

/**
 * Puts `src` at `dst` as cheaply as the file systems allow: a hard link (same inode, no data
 * copied) when both are on one file system, else a reflink or a sparse copy (`cp`), so a flat
 * memory file of mostly holes stays mostly holes. Only for files nobody writes again: a hard
 * link shares every later write. `dst` must not exist, except as a link to the same inode.
 */
export async function linkOrCopy(src: string, dst: string): Promise<"linked" | "copied"> {
  try {
    await link(src, dst);
    return "linked";
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && (await sameFile(src, dst))) return "linked";
    // EXDEV: another file system; EPERM/ENOTSUP: one that has no hard links.
    if (code !== "EXDEV" && code !== "EPERM" && code !== "ENOTSUP") throw err;
  }
  await runCommand("cp", ["--reflink=auto", "--sparse=always", "--no-clobber", "--", src, dst], {
    timeoutMs: COPY_TIMEOUT_MS,
  });
  return "copied";
}

async function sameFile(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([stat(a), stat(b)]);
  return x.dev === y.dev && x.ino === y.ino;
}
