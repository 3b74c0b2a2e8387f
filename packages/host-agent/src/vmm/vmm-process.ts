import { readFile } from "node:fs/promises";

/** A process as /proc shows it; `startTime` tells a reused pid from the original. */
export interface ProcessIdentity {
  pid: number;
  argv: string[];
  /** Start time in clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTime: string;
}

/** Reads a live process's command line and start time; undefined when gone or a zombie. */
export async function readProcess(pid: number, procDir = "/proc"): Promise<ProcessIdentity | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const stat = await readStat(pid, procDir);
  if (!stat || stat.state === "Z" || stat.state === "X") return undefined;
  const cmdline = await readFile(`${procDir}/${pid}/cmdline`, "utf8").catch(() => "");
  if (!cmdline) return undefined;
  return {
    pid,
    argv: cmdline.split("\0").filter((a, i, all) => a !== "" || i < all.length - 1),
    startTime: stat.startTime,
  };
}

/** True while the process is alive and is still the one `identity` describes. */
export async function sameProcess(identity: ProcessIdentity, procDir = "/proc"): Promise<boolean> {
  const stat = await readStat(identity.pid, procDir);
  return !!stat && stat.state !== "Z" && stat.state !== "X" && stat.startTime === identity.startTime;
}

async function readStat(
  pid: number,
  procDir: string,
): Promise<{ state: string; startTime: string } | undefined> {
  const text = await readFile(`${procDir}/${pid}/stat`, "utf8").catch(() => "");
  // The command name (field 2) may hold spaces and parentheses: parse after the last ")".
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const state = rest[0];
  const startTime = rest[19];
  return state && startTime ? { state, startTime } : undefined;
}
