import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { exportPseudoPath, ganeshaConfig } from "./ganesha-config.js";
import type { GaneshaSupervisor } from "./ganesha-supervisor.js";
import type { CreateVolumeInput, VolumeRecord, VolumeStore } from "./volume-store.js";

/**
 * Volumes and who may mount them. A grant lets one network slot (by the veth ns address its
 * guest's traffic arrives from) mount some volumes; the server's export list is rebuilt from
 * the volumes and the grants after every change, and a change resolves only once the server
 * serves it (so a grant made before a guest's vCPUs run is in force when they do). Grants are
 * kept on disk so an agent restart re-applies them for the sandboxes it adopts.
 */

export interface VolumeGrant {
  /** The slot's veth ns address: what the server sees as the guest's source address. */
  address: string;
  volumeIds: string[];
}

export interface VolumeServiceOptions {
  nfsPort: number;
  mountPort: number;
}

const GRANTS_FILE = "grants.json";

export class VolumeService {
  private grants = new Map<number, VolumeGrant>();
  private queue: Promise<unknown> = Promise.resolve();
  /** Volumes being deleted: no longer exported. */
  private readonly deleting = new Set<string>();

  constructor(
    private readonly logger: Logger,
    private readonly store: VolumeStore,
    private readonly server: GaneshaSupervisor,
    private readonly options: VolumeServiceOptions,
  ) {}

  /** Loads the grants, keeps only those of `liveSlots` (when given), and starts/adopts the server. */
  start(liveSlots?: ReadonlySet<number>): Promise<void> {
    return this.serialize(async () => {
      const text = await readFile(this.grantsPath, "utf8").catch(() => "{}");
      const saved = JSON.parse(text) as Record<string, VolumeGrant>;
      this.grants = new Map();
      for (const [slot, grant] of Object.entries(saved)) {
        const n = Number(slot);
        if (liveSlots && !liveSlots.has(n)) continue;
        this.grants.set(n, {
          address: grant.address,
          volumeIds: grant.volumeIds.filter((id) => this.store.get(id)),
        });
      }
      await this.commit();
    });
  }

  get(volumeId: string): VolumeRecord | undefined {
    return this.store.get(volumeId);
  }

  ownerOf(volumeId: string): string | undefined {
    return this.store.get(volumeId)?.teamId;
  }

  /** Being deleted: its content is no longer served. */
  isDeleting(volumeId: string): boolean {
    return this.deleting.has(volumeId);
  }

  list(teamId?: string): VolumeRecord[] {
    return this.store.list(teamId);
  }

  /** Where guests mount a volume on their gateway. */
  exportPath(volumeId: string): string {
    return exportPseudoPath(volumeId);
  }

  /** The host directory with a volume's files. */
  hostPath(volumeId: string): string {
    return this.store.mountPath(volumeId);
  }

  create(input: CreateVolumeInput): Promise<VolumeRecord> {
    return this.serialize(async () => {
      const record = await this.store.create(input);
      await this.commit();
      return record;
    });
  }

  /** Refused (conflict) while any slot may mount the volume: a sandbox still uses it. */
  delete(volumeId: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.store.get(volumeId)) throw new WrennError("not_found", `volume ${volumeId} not found`);
      const users = [...this.grants].filter(([, g]) => g.volumeIds.includes(volumeId)).map(([slot]) => slot);
      if (users.length > 0) {
        throw new WrennError("conflict", `volume ${volumeId} is mounted by ${users.length} sandbox(es)`);
      }
      // The export goes first: the server holds the volume's file system open while it exports it.
      this.deleting.add(volumeId);
      try {
        await this.commit();
        await this.store.delete(volumeId);
      } catch (err) {
        this.deleting.delete(volumeId);
        await this.commit().catch(() => {});
        throw err;
      }
      this.deleting.delete(volumeId);
    });
  }

  /**
   * Lets `slot` (whose guest's traffic comes from `address`) mount exactly `volumeIds`,
   * replacing what it had; with a team, every volume must belong to it.
   */
  grant(slot: number, address: string, volumeIds: readonly string[], teamId?: string): Promise<void> {
    return this.serialize(async () => {
      for (const id of volumeIds) {
        const v = this.store.get(id);
        if (!v || (teamId !== undefined && v.teamId !== teamId)) {
          throw new WrennError("not_found", `volume ${id} not found`);
        }
      }
      if (volumeIds.length === 0) this.grants.delete(slot);
      else this.grants.set(slot, { address, volumeIds: [...new Set(volumeIds)] });
      await this.commit();
    });
  }

  /** Takes every volume away from `slot`; idempotent. */
  revoke(slot: number): Promise<void> {
    return this.serialize(async () => {
      if (!this.grants.delete(slot)) return;
      await this.commit();
    });
  }

  /** The volumes a slot may mount now. */
  granted(slot: number): readonly string[] {
    return this.grants.get(slot)?.volumeIds ?? [];
  }

  /**
   * Stops the server (and the rpcbind it started); with `unmount` the volumes' images are
   * unmounted too (the next start mounts them again). Volumes and grants stay on disk.
   */
  async stop(options: { unmount?: boolean } = {}): Promise<void> {
    await this.server.stop({ rpcbind: true });
    if (options.unmount) await this.store.unmountAll();
  }

  private get grantsPath(): string {
    return join(this.store.root, GRANTS_FILE);
  }

  /** Persists the grants, then makes the server serve the matching exports. */
  private async commit(): Promise<void> {
    const tmp = `${this.grantsPath}.tmp`;
    await writeFile(tmp, JSON.stringify(Object.fromEntries(this.grants), null, 2));
    await rename(tmp, this.grantsPath);
    const exports = this.store
      .list()
      .filter((v) => !this.deleting.has(v.volumeId))
      .map((v) => ({
        exportId: v.exportId,
        path: this.store.mountPath(v.volumeId),
        pseudo: exportPseudoPath(v.volumeId),
        clients: [...this.grants.values()]
          .filter((g) => g.volumeIds.includes(v.volumeId))
          .map((g) => g.address),
      }));
    await this.server.apply(ganeshaConfig({ ...this.options, exports }));
    this.logger.debug("volume exports applied", { volumes: exports.length, grants: this.grants.size });
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }
}
