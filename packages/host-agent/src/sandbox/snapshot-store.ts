import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import type { SandboxResources } from "./sandbox-record.js";

/**
 * A snapshot: a frozen VM (memory snapshot + disk layer) new sandboxes start from.
 * Its files stay while anything reads them, even after the name is deleted.
 */
export interface SnapshotRecord {
  /** Internal id; names the directory (names can be deleted and reused). */
  id: string;
  /** Unique among live snapshots; empty once deleted. */
  name: string;
  /** Fork-internal snapshots are not listed and go away with their last dependent. */
  hidden: boolean;
  /** Deleted by name; kept on disk until no sandbox depends on it. */
  deleted: boolean;
  sourceSandboxId: string;
  /** The guest image the lineage booted from. */
  image: string;
  resources: SandboxResources;
  createdAt: string;
  memorySnapshot: string;
  /** Read-only qcow2 layer holding the disk as it was (backed by older layers / the image). */
  diskPath: string;
  /** envd's access token inside the frozen VM (a clone's first /init must present it). */
  envdAccessToken: string;
  defaultUser: string;
  defaultWorkdir: string;
  /**
   * Volumes mounted in the frozen guest: a sandbox created from the snapshot has them mounted
   * already, so its slot must be granted them (when its team owns them) for the mounts to work.
   */
  volumeMounts?: Array<{ volumeId: string; path: string }>;
  /** The source sandbox's egress policy; a sandbox created from the snapshot without one gets it. */
  networkPolicy?: NetworkPolicy;
  /** Snapshots whose files this one reads (its disk's backing layers, its memory builds). */
  dependsOn: string[];
  /** Set on an image snapshot (see ImageSnapshots): its image build, size and accelerator. */
  imageKey?: string;
  /** The image build an image snapshot was made from. */
  imageBuild?: string;
  /** How long an image snapshot's cold boot took, to envd ready and initialised (ms). */
  imageBootMs?: number;
}

export const DISK_LAYER_FILE = "disk.qcow2";
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;

export function validateSnapshotName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new WrennError(
      "invalid_argument",
      `snapshot name "${name}" is not valid (1-128 of letters, digits, ".", "_", "-", starting with a letter or digit)`,
    );
  }
}

/**
 * One JSON file per snapshot under `<dir>/<id>/template.json`, written atomically (the file
 * name is the one agents already have on disk).
 */
export class SnapshotStore {
  private readonly snapshots = new Map<string, SnapshotRecord>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<SnapshotStore> {
    const store = new SnapshotStore(dir);
    await mkdir(dir, { recursive: true });
    for (const id of await readdir(dir)) {
      try {
        const record = JSON.parse(await readFile(join(dir, id, "template.json"), "utf8")) as SnapshotRecord;
        store.snapshots.set(record.id, record);
      } catch {
        // A snapshot whose record never got written (crash mid-create): nothing points at it.
        await rm(join(dir, id), { recursive: true, force: true });
      }
    }
    return store;
  }

  newId(): string {
    return `t${randomBytes(8).toString("hex")}`;
  }

  dirFor(id: string): string {
    return join(this.dir, id);
  }

  all(): SnapshotRecord[] {
    return [...this.snapshots.values()];
  }

  /** The live snapshot with this name (not deleted). */
  byName(name: string): SnapshotRecord | undefined {
    return this.all().find((t) => !t.deleted && t.name === name);
  }

  byId(id: string): SnapshotRecord | undefined {
    return this.snapshots.get(id);
  }

  async save(record: SnapshotRecord): Promise<void> {
    const dir = this.dirFor(record.id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, "template.json.tmp");
    await writeFile(tmp, JSON.stringify(record, null, 2));
    await rename(tmp, join(dir, "template.json"));
    this.snapshots.set(record.id, record);
  }

  async remove(id: string): Promise<void> {
    this.snapshots.delete(id);
    await rm(this.dirFor(id), { recursive: true, force: true });
  }
}
