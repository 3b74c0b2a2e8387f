import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { randomId, WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";

const HASH_RE = /^[a-f0-9]{64}$/;

/**
 * Copy steps' archives (tar.gz), kept on the control plane's disk per team and hash, so a
 * build on any host can copy them in again. A row in template_files marks a complete file;
 * the file is written under a temporary name and renamed into place first.
 */
export class TemplateFiles {
  constructor(
    private readonly db: Db,
    private readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  pathOf(teamId: string, hash: string): string {
    if (!HASH_RE.test(hash))
      throw new WrennError("invalid_argument", `files hash "${hash}" is not a sha256 hex`);
    return join(this.dir, teamId, `${hash}.tar.gz`);
  }

  async present(teamId: string, hash: string): Promise<boolean> {
    const row = await this.db
      .selectFrom("template_files")
      .select("hash")
      .where("team_id", "=", teamId)
      .where("hash", "=", hash)
      .executeTakeFirst();
    if (!row) return false;
    // A row whose file was removed behind our back is not a file: upload it again.
    return stat(this.pathOf(teamId, hash)).then(
      () => true,
      () => false,
    );
  }

  /** Hashes missing of those given (each is checked once). */
  async missing(teamId: string, hashes: Iterable<string>): Promise<string[]> {
    const out: string[] = [];
    for (const hash of new Set(hashes)) if (!(await this.present(teamId, hash))) out.push(hash);
    return out;
  }

  /**
   * Stores an upload. `verify` (the /v1 API) requires the body's sha256 to be the hash it is
   * stored under; E2B's hash is of the file list, not the bytes, so its uploads are stored as named.
   */
  async put(teamId: string, hash: string, body: Readable, verify: boolean): Promise<{ size: number }> {
    const path = this.pathOf(teamId, hash);
    await mkdir(join(this.dir, teamId), { recursive: true });
    const temp = `${path}.${randomId(8)}.part`;
    const sha = createHash("sha256");
    let size = 0;
    const max = this.maxBytes;
    try {
      await pipeline(
        body,
        async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            size += chunk.length;
            if (size > max) throw new WrennError("invalid_argument", `archive larger than ${max} bytes`);
            sha.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temp, { mode: 0o600 }),
      );
      if (size === 0) throw new WrennError("invalid_argument", "the archive is empty");
      const actual = sha.digest("hex");
      if (verify && actual !== hash) {
        throw new WrennError("invalid_argument", `the archive's sha256 is ${actual}, not ${hash}`);
      }
      await rename(temp, path);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    await this.db
      .insertInto("template_files")
      .values({ team_id: teamId, hash, size })
      .onConflict((oc) => oc.columns(["team_id", "hash"]).doUpdateSet({ size }))
      .execute();
    return { size };
  }

  open(teamId: string, hash: string): Readable {
    return createReadStream(this.pathOf(teamId, hash));
  }

  /** Removes a team's files no build of its templates uses any more. */
  async collect(teamId: string, inUse: ReadonlySet<string>): Promise<number> {
    const rows = await this.db
      .selectFrom("template_files")
      .select("hash")
      .where("team_id", "=", teamId)
      .execute();
    let removed = 0;
    for (const { hash } of rows) {
      if (inUse.has(hash)) continue;
      await this.db
        .deleteFrom("template_files")
        .where("team_id", "=", teamId)
        .where("hash", "=", hash)
        .execute();
      await rm(this.pathOf(teamId, hash), { force: true });
      removed++;
    }
    return removed;
  }
}
