import { constants } from "node:fs";
import { open } from "node:fs/promises";

/*
 * cgroupfs files are only ever opened, never created: on a host where /sys/fs/cgroup is not
 * cgroup2, a missing file must fail (ENOENT) instead of turning up as a plain file.
 */

/** Replaces a cgroup property (cpu.weight, memory.high, ...). */
export async function writeCgroupFile(path: string, value: string): Promise<void> {
  const file = await open(path, constants.O_WRONLY | constants.O_TRUNC);
  try {
    await file.write(value);
  } finally {
    await file.close();
  }
}

/**
 * Writes one request to a control file that takes one per write (cgroup.procs,
 * cgroup.subtree_control). Appending keeps a test's plain-file stand-in readable.
 */
export async function appendCgroupFile(path: string, value: string): Promise<void> {
  const file = await open(path, constants.O_WRONLY | constants.O_APPEND);
  try {
    await file.write(`${value}\n`);
  } finally {
    await file.close();
  }
}

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}
