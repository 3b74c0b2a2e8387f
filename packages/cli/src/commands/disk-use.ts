import { lstat, readdir, readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { formatBytes } from "../format.js";

/**
 * Disk used on this machine by Wrenn's stored data, sized like `du` (allocated blocks, so a
 * sparse file counts what it holds, not its length). The agent's layout (host-agent config
 * and snapshot-store): `<agent>/templates/<id>/template.json` (a snapshot record, its disk
 * layer beside it) and `<agent>/memory/<memorySnapshot>.{mem,dev,hdr}`. Records are told
 * apart by name: `b-*` a template build's snapshot, `c-*` a build step's cache entry; one
 * with `imageKey` is an image's booted snapshot; any other is a user's snapshot (or a fork's).
 */

export const DISK_USE_CLASSES = [
  "images",
  "templates",
  "stepCaches",
  "imageSnapshots",
  "snapshots",
  "deletedInUse",
  "templateFiles",
] as const;
export type DiskUseClass = (typeof DISK_USE_CLASSES)[number];

export interface DiskUseEntry {
  /** Allocated bytes. */
  bytes: number;
  /** Snapshot records, image builds or archives counted. */
  count: number;
}

export type DiskUse = Record<DiskUseClass, DiskUseEntry>;

export interface DiskUseDirs {
  imagesDir: string;
  agentDataDir: string;
  templateFilesDir: string;
}

const LABELS: Record<DiskUseClass, string> = {
  images: "images",
  templates: "templates",
  stepCaches: "step caches",
  imageSnapshots: "image snapshots",
  snapshots: "user snapshots",
  deletedInUse: "deleted, still in use",
  templateFiles: "template files",
};

/** The directories as the agent and control plane default them (their env vars first). */
export function diskUseDirs(env: Record<string, string | undefined>): DiskUseDirs {
  const wrennDir = env.WRENN_DIR || join(homedir(), ".wrenn");
  return {
    imagesDir: env.WRENN_IMAGES_DIR || join(wrennDir, "images"),
    agentDataDir: env.WRENN_AGENT_DATA_DIR || join(wrennDir, "agent"),
    templateFilesDir: env.WRENN_CP_TEMPLATE_FILES_DIR || join(wrennDir, "cp", "template-files"),
  };
}

/** Allocated bytes under `path` (not following symlinks; a hard-linked file counted once). */
export async function allocatedBytes(path: string, seen = new Set<string>()): Promise<number> {
  const st = await lstat(path).catch(() => undefined);
  if (!st) return 0;
  const key = `${st.dev}:${st.ino}`;
  if (seen.has(key)) return 0;
  seen.add(key);
  let total = st.blocks * 512;
  if (st.isDirectory()) {
    for (const name of await readdir(path).catch(() => [] as string[])) {
      total += await allocatedBytes(join(path, name), seen);
    }
  }
  return total;
}

interface RecordFields {
  name?: string;
  deleted?: boolean;
  imageKey?: string;
  memorySnapshot?: string;
}

export function classifySnapshot(record: RecordFields): DiskUseClass {
  if (record.deleted) return "deletedInUse";
  if (record.imageKey) return "imageSnapshots";
  const name = record.name ?? "";
  if (name.startsWith("b-")) return "templates";
  if (name.startsWith("c-")) return "stepCaches";
  return "snapshots";
}

async function readRecord(file: string): Promise<RecordFields | undefined> {
  try {
    return JSON.parse(await readFile(file, "utf8")) as RecordFields;
  } catch {
    return undefined;
  }
}

const empty = (): DiskUseEntry => ({ bytes: 0, count: 0 });

/** Measures every class; a missing directory counts as nothing. */
export async function measureDiskUse(dirs: DiskUseDirs): Promise<DiskUse> {
  const use = Object.fromEntries(DISK_USE_CLASSES.map((c) => [c, empty()])) as DiskUse;
  const seen = new Set<string>();
  for (const name of await readdir(dirs.imagesDir).catch(() => [] as string[])) {
    use.images.bytes += await allocatedBytes(join(dirs.imagesDir, name), seen);
    use.images.count++;
  }
  const snapshotsDir = join(dirs.agentDataDir, "templates");
  const memoryDir = join(dirs.agentDataDir, "memory");
  for (const id of await readdir(snapshotsDir).catch(() => [] as string[])) {
    const record = await readRecord(join(snapshotsDir, id, "template.json"));
    if (!record) continue;
    const entry = use[classifySnapshot(record)];
    entry.count++;
    entry.bytes += await allocatedBytes(join(snapshotsDir, id), seen);
    if (record.memorySnapshot && /^[\w.-]+$/.test(record.memorySnapshot)) {
      for (const ext of ["mem", "dev", "hdr"]) {
        entry.bytes += await allocatedBytes(join(memoryDir, `${record.memorySnapshot}.${ext}`), seen);
      }
    }
  }
  for (const team of await readdir(dirs.templateFilesDir).catch(() => [] as string[])) {
    for (const file of await readdir(join(dirs.templateFilesDir, team)).catch(() => [] as string[])) {
      use.templateFiles.bytes += await allocatedBytes(join(dirs.templateFilesDir, team, file), seen);
      use.templateFiles.count++;
    }
  }
  return use;
}

/** One line: each non-empty class with its size and count. */
export function formatDiskUse(use: DiskUse): string {
  const parts = DISK_USE_CLASSES.filter((c) => c === "images" || use[c].count > 0).map(
    (c) => `${LABELS[c]} ${formatBytes(use[c].bytes)} (${use[c].count})`,
  );
  const total = DISK_USE_CLASSES.reduce((n, c) => n + use[c].bytes, 0);
  return `${formatBytes(total)}: ${parts.join(", ")}`;
}
