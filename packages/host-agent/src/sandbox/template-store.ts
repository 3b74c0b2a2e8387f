import { randomBytes } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { WrennError } from "@wrenn/shared";
import type { SandboxResources } from "./sandbox-record.js";

/**
 * A snapshot template: a frozen VM (memory snapshot + disk layer) new sandboxes start from.
 * Its files stay while anything reads them, even after the name is deleted.
 */
export interface TemplateRecord {
  /** Internal id; names the directory (names can be deleted and reused). */
  id: string;
  /** Unique among live templates; empty once deleted. */
  name: string;
  /** Fork templates are not listed and go away with their last dependent. */
  hidden: boolean;
  /** Deleted by name; kept on disk until no sandbox depends on it. */
  deleted: boolean;
  sourceSandboxId: string;
  /** The guest image the lineage booted from. */
  baseTemplate: string;
  resources: SandboxResources;
  createdAt: string;
  memorySnapshot: string;
  /** Read-only qcow2 layer holding the disk as it was (backed by older layers / the image). */
  diskPath: string;
  /** envd's access token inside the frozen VM (a clone's first /init must present it). */
  envdAccessToken: string;
  defaultUser: string;
  defaultWorkdir: string;
  /** Templates whose files this one reads (its disk's backing layers, its memory builds). */
  dependsOn: string[];
}

export const DISK_LAYER_FILE = "disk.qcow2";
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,127}$/;

export function validateTemplateName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new WrennError(
      "invalid_argument",
      `snapshot name "${name}" is not valid (1-128 of letters, digits, ".", "_", "-", starting with a letter or digit)`,
    );
  }
}

/** One JSON file per template under `<dir>/<id>/template.json`, written atomically. */
export class TemplateStore {
  private readonly templates = new Map<string, TemplateRecord>();

  private constructor(readonly dir: string) {}

  static async open(dir: string): Promise<TemplateStore> {
    const store = new TemplateStore(dir);
    await mkdir(dir, { recursive: true });
    for (const id of await readdir(dir)) {
      try {
        const record = JSON.parse(await readFile(join(dir, id, "template.json"), "utf8")) as TemplateRecord;
        store.templates.set(record.id, record);
      } catch {
        // A template whose record never got written (crash mid-create): nothing points at it.
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

  all(): TemplateRecord[] {
    return [...this.templates.values()];
  }

  /** The live template with this name (not deleted). */
  byName(name: string): TemplateRecord | undefined {
    return this.all().find((t) => !t.deleted && t.name === name);
  }

  byId(id: string): TemplateRecord | undefined {
    return this.templates.get(id);
  }

  async save(record: TemplateRecord): Promise<void> {
    const dir = this.dirFor(record.id);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, "template.json.tmp");
    await writeFile(tmp, JSON.stringify(record, null, 2));
    await rename(tmp, join(dir, "template.json"));
    this.templates.set(record.id, record);
  }

  async remove(id: string): Promise<void> {
    this.templates.delete(id);
    await rm(this.dirFor(id), { recursive: true, force: true });
  }
}
