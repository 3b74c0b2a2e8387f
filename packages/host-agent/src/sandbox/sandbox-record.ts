import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";

export type SandboxStateName = "pending" | "running" | "paused" | "stopped" | "error";
/** What the inactivity timeout does; `pause-filesystem` pauses without keeping memory. */
export type TimeoutActionName = "destroy" | "pause" | "pause-filesystem";

export interface SandboxResources {
  vcpus: number;
  memoryMiB: number;
  diskMiB: number;
}

/**
 * What the agent writes to disk about each sandbox, so a restarted agent can
 * re-adopt running VMs and clean up after dead ones. Updated after every step of
 * create, so a crash at any point leaves enough to undo it.
 */
export interface SandboxRecord {
  id: string;
  /** The guest image the sandbox (or its snapshot lineage) booted from. */
  image: string;
  state: SandboxStateName;
  resources: SandboxResources;
  createdAt: string;
  timeoutSec: number;
  timeoutAction: TimeoutActionName;
  expiresAt: string;
  metadata: Record<string, string>;
  envVars: Record<string, string>;
  envdAccessToken: string;
  defaultUser: string;
  defaultWorkdir: string;
  runDir: string;
  slot?: number;
  hostIp?: string;
  overlayPath?: string;
  vmmPid?: number;
  error?: string;
  /**
   * The memory snapshot the VM started from (running: its parent for the next pause) or
   * was saved into (paused). Absent for a cold-booted VM never paused.
   */
  memorySnapshot?: string;
  /** Snapshots whose files this sandbox reads (disk layers, memory builds). */
  dependsOn?: string[];
  /** Name of the snapshot it was created from. */
  fromSnapshot?: string;
  pausedAt?: string;
  /**
   * Paused keeping only its disk layer (no memory snapshot): a resume cold-boots the image's
   * kernel over that disk. Set only while paused.
   */
  pausedWithoutMemory?: boolean;
  /** Volumes of this host mounted in the guest (granted to its slot whenever it runs). */
  volumeMounts?: Array<{ volumeId: string; path: string }>;
  /**
   * Where the guest may connect (normalised); absent: open. Enforced whenever the sandbox's
   * network exists; a paused sandbox's is applied when it resumes.
   */
  networkPolicy?: NetworkPolicy;
  /** The VM building an image snapshot: not a user's sandbox, never re-adopted after a restart. */
  internal?: boolean;
}

/** One JSON file per sandbox under `<dataDir>/sandboxes/<id>/record.json`, written atomically. */
export class SandboxRecordStore {
  constructor(private readonly sandboxesDir: string) {}

  dirFor(id: string): string {
    return join(this.sandboxesDir, id);
  }

  async save(record: SandboxRecord): Promise<void> {
    const dir = this.dirFor(record.id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, "record.json.tmp");
    await writeFile(tmp, JSON.stringify(record, null, 2));
    await rename(tmp, join(dir, "record.json"));
  }

  async remove(id: string): Promise<void> {
    await rm(this.dirFor(id), { recursive: true, force: true });
  }

  /** Every readable record; unreadable ones are returned as ids so the caller can clean them up. */
  async loadAll(): Promise<{ records: SandboxRecord[]; unreadable: string[] }> {
    const records: SandboxRecord[] = [];
    const unreadable: string[] = [];
    const ids = await readdir(this.sandboxesDir).catch(() => [] as string[]);
    for (const id of ids) {
      try {
        records.push(parseSandboxRecord(await readFile(join(this.dirFor(id), "record.json"), "utf8")));
      } catch {
        unreadable.push(id);
      }
    }
    return { records, unreadable };
  }
}

/** A record as JSON; one an older agent wrote names the image `template`. */
export function parseSandboxRecord(text: string): SandboxRecord {
  const raw = JSON.parse(text) as SandboxRecord & { template?: string };
  const { template, ...record } = raw;
  if (record.image === undefined && typeof template === "string") record.image = template;
  if (typeof record.image !== "string") throw new Error("sandbox record names no image");
  return record;
}
