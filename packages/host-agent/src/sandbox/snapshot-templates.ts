import { randomBytes } from "node:crypto";
import { chmod, mkdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, runLimited, WrennError } from "@wrenn/shared";
import type { MemorySnapshotStore } from "../snapshot/memory-store.js";
import type { DiskLayerStore } from "../storage/disk-layer.js";
import type { CreateSandboxInput } from "./create-input.js";
import type { SandboxRecord, SandboxRecordStore, SandboxResources } from "./sandbox-record.js";
import {
  DISK_LAYER_FILE,
  type TemplateRecord,
  type TemplateStore,
  validateTemplateName,
} from "./template-store.js";

/** What template operations need of the sandboxes on this host (the sandbox manager). */
export interface SandboxesPort {
  list(): SandboxRecord[];
  get(id: string): SandboxRecord;
  create(input: CreateSandboxInput): Promise<SandboxRecord>;
  destroy(id: string): Promise<void>;
  /**
   * Runs `work` under the sandbox's lock with it paused (a running one is paused first; a
   * sandbox neither running nor paused is refused). A sandbox that was running is resumed
   * afterwards when `resumeAfter`, and always when `work` fails.
   */
  whilePaused<T>(id: string, resumeAfter: boolean, work: (record: PausedRecord) => Promise<T>): Promise<T>;
}

/** A paused sandbox's record: it has a memory snapshot. */
export type PausedRecord = SandboxRecord & { memorySnapshot: string };

export interface SnapshotTemplatesDeps {
  templates: TemplateStore;
  disks: DiskLayerStore;
  memory: MemorySnapshotStore;
  records: SandboxRecordStore;
  logger: Logger;
  now: () => Date;
  /** Serialises snapshot writes and garbage collection of snapshot files. */
  withStorage<T>(fn: () => Promise<T>): Promise<T>;
}

/**
 * Snapshot templates: freezing a sandbox into a named template (memory snapshot plus a
 * read-only disk layer), listing and deleting them, forking a running sandbox through a
 * hidden one, and collecting the files nothing reaches any more.
 */
export class SnapshotTemplates {
  constructor(
    private readonly deps: SnapshotTemplatesDeps,
    private readonly sandboxes: SandboxesPort,
  ) {}

  /** A template by name; fork-internal (hidden) ones only for creating sandboxes. */
  live(name: string, includeHidden = false): TemplateRecord {
    const template = this.deps.templates.byName(name);
    if (!template || (template.hidden && !includeHidden)) {
      throw new WrennError("not_found", `snapshot ${name} not found`);
    }
    return template;
  }

  /** A template's sizes are fixed by its frozen VM; a request may only repeat them (or grow the disk). */
  resourcesFor(template: TemplateRecord, requested: CreateSandboxInput["resources"]): SandboxResources {
    const t = template.resources;
    if (requested?.vcpus !== undefined && requested.vcpus !== t.vcpus) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${template.name} has ${t.vcpus} vCPUs; a sandbox from it cannot have ${requested.vcpus}`,
      );
    }
    if (requested?.memoryMiB !== undefined && requested.memoryMiB !== t.memoryMiB) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${template.name} has ${t.memoryMiB} MiB of memory; a sandbox from it cannot have ${requested.memoryMiB}`,
      );
    }
    if (requested?.diskMiB !== undefined && requested.diskMiB < t.diskMiB) {
      throw new WrennError(
        "invalid_argument",
        `snapshot ${template.name} has a ${t.diskMiB} MiB disk; a sandbox from it cannot have less`,
      );
    }
    return { vcpus: t.vcpus, memoryMiB: t.memoryMiB, diskMiB: requested?.diskMiB ?? t.diskMiB };
  }

  /**
   * Freezes a sandbox into a named snapshot template: pauses it if running, turns its disk
   * layer into the template's read-only layer (the sandbox continues on a new layer on
   * top), and records the memory snapshot. A sandbox that was running is resumed unless
   * `leavePaused`.
   */
  async create(
    id: string,
    name: string,
    options: { leavePaused?: boolean; hidden?: boolean } = {},
  ): Promise<{ template: TemplateRecord; record: SandboxRecord }> {
    validateTemplateName(name);
    const taken = () => {
      if (this.deps.templates.byName(name)) {
        throw new WrennError("already_exists", `snapshot ${name} already exists`);
      }
    };
    taken();
    return this.sandboxes.whilePaused(id, !options.leavePaused, async (record) => {
      taken();
      const templates = this.deps.templates;
      const templateId = templates.newId();
      const dir = templates.dirFor(templateId);
      const diskPath = join(dir, DISK_LAYER_FILE);
      const overlay = this.deps.disks.overlayPath(id);
      await mkdir(dir, { recursive: true });
      const template: TemplateRecord = {
        id: templateId,
        name,
        hidden: options.hidden ?? false,
        deleted: false,
        sourceSandboxId: id,
        baseTemplate: record.template,
        resources: { ...record.resources },
        createdAt: this.deps.now().toISOString(),
        memorySnapshot: record.memorySnapshot,
        diskPath,
        envdAccessToken: record.envdAccessToken,
        defaultUser: record.defaultUser,
        defaultWorkdir: record.defaultWorkdir,
        dependsOn: [...(record.dependsOn ?? [])],
      };
      try {
        await rename(overlay, diskPath);
        await chmod(diskPath, 0o444);
        try {
          record.overlayPath = await this.deps.disks.createOverlay(id, diskPath, record.resources.diskMiB, {
            baseFormat: "qcow2",
          });
          await templates.save(template);
        } catch (err) {
          await this.deps.disks.removeOverlay(id);
          await chmod(diskPath, 0o600);
          await rename(diskPath, overlay);
          record.overlayPath = overlay;
          throw err;
        }
      } catch (err) {
        await rm(dir, { recursive: true, force: true });
        throw WrennError.from(err);
      }
      record.dependsOn = [...(record.dependsOn ?? []), templateId];
      await this.deps.records.save(record);
      this.deps.logger.info("snapshot template created", { sandbox: id, name, template: templateId });
      return { template, record };
    });
  }

  /** Live templates (not deleted, not fork-internal) and the sandboxes that depend on each. */
  list(): Array<{ template: TemplateRecord; dependents: string[] }> {
    return this.deps.templates
      .all()
      .filter((t) => !t.deleted && !t.hidden)
      .map((template) => ({ template, dependents: this.dependentsOf(template.id) }))
      .sort((a, b) => a.template.createdAt.localeCompare(b.template.createdAt));
  }

  private dependentsOf(templateId: string): string[] {
    return this.sandboxes
      .list()
      .filter((r) => r.state !== "stopped" && r.dependsOn?.includes(templateId))
      .map((r) => r.id);
  }

  /**
   * Deletes a template by name. Refused while sandboxes depend on it unless `force`; then the
   * name goes at once and the files when the last dependent is gone.
   */
  async delete(name: string, force = false): Promise<void> {
    const template = this.live(name);
    const dependents = this.dependentsOf(template.id);
    if (dependents.length > 0 && !force) {
      throw new WrennError(
        "failed_precondition",
        `snapshot ${name} is in use by ${dependents.length} sandbox(es): ${dependents.slice(0, 5).join(", ")}; delete them first or force`,
      );
    }
    await this.deps.templates.save({ ...template, deleted: true, name: "" });
    this.deps.logger.info("snapshot template deleted", {
      name,
      template: template.id,
      dependents: dependents.length,
    });
    await this.collectGarbage();
  }

  /** `count` new sandboxes from the current state of a running one, which keeps running. */
  async fork(
    id: string,
    count: number,
    metadata: Record<string, string> = {},
    envdAccessTokens: readonly string[] = [],
  ): Promise<SandboxRecord[]> {
    if (!Number.isInteger(count) || count < 1 || count > 100) {
      throw new WrennError("invalid_argument", `fork count must be 1..100, got ${count}`);
    }
    if (envdAccessTokens.length > 0 && envdAccessTokens.length !== count) {
      throw new WrennError(
        "invalid_argument",
        `fork of ${count} needs ${count} envd access tokens or none, got ${envdAccessTokens.length}`,
      );
    }
    const source = this.sandboxes.get(id);
    if (source.state !== "running") {
      throw new WrennError("failed_precondition", `sandbox ${id} is ${source.state}, not running`);
    }
    const name = `fork-${id}-${randomBytes(4).toString("hex")}`;
    const { template } = await this.create(id, name, { hidden: true });
    // In the order asked, so the caller can pair forks with the tokens it gave.
    const forks: (SandboxRecord | undefined)[] = Array.from({ length: count }, () => undefined);
    try {
      // Four at a time; after a failure no new fork starts, so the cleanup below sees them all.
      await runLimited(count, 4, async (i) => {
        forks[i] = await this.sandboxes.create({
          template: source.template,
          snapshot: name,
          timeoutSec: source.timeoutSec,
          timeoutAction: source.timeoutAction,
          envVars: source.envVars,
          metadata: { ...source.metadata, ...metadata },
          defaultUser: source.defaultUser,
          defaultWorkdir: source.defaultWorkdir,
          envdAccessToken: envdAccessTokens[i],
        });
      });
    } catch (err) {
      await Promise.allSettled(forks.map((f) => (f ? this.sandboxes.destroy(f.id) : undefined)));
      throw WrennError.from(err);
    } finally {
      await this.deps.templates.save({ ...template, deleted: true, name: "" });
      await this.collectGarbage();
    }
    return forks.filter((f): f is SandboxRecord => f !== undefined);
  }

  /**
   * Removes deleted templates nothing depends on any more, then every memory file no
   * sandbox or template reaches.
   */
  async collectGarbage(): Promise<void> {
    await this.deps.withStorage(async () => {
      const records = this.sandboxes.list();
      for (const t of this.deps.templates.all()) {
        if (!t.deleted) continue;
        const needed =
          records.some((r) => r.dependsOn?.includes(t.id)) ||
          this.deps.templates.all().some((o) => o.id !== t.id && o.dependsOn.includes(t.id));
        if (!needed) await this.deps.templates.remove(t.id);
      }
      const live = [
        ...records.map((r) => r.memorySnapshot),
        ...this.deps.templates.all().map((t) => t.memorySnapshot),
      ].filter((s): s is string => s !== undefined);
      const removed = await this.deps.memory.collectGarbage(live);
      if (removed.length > 0) this.deps.logger.info("snapshot files collected", { files: removed.length });
    });
  }
}
