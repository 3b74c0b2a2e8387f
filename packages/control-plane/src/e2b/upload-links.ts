import { createHash, randomBytes } from "node:crypto";
import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";

/** How long an upload link stays good. */
const UPLOAD_LINK_TTL_MS = 60 * 60_000;

const hashToken = (token: string): string => createHash("sha256").update(token).digest("hex");

/**
 * Upload links of the E2B template API: token → whose file. Kept in the database (only the
 * token's hash) so the PUT may reach any replica.
 */
export class UploadLinks {
  constructor(
    private readonly db: Db,
    private readonly now: () => Date,
  ) {}

  async create(principal: Principal, filesHash: string): Promise<string> {
    const now = this.now();
    await this.db.deleteFrom("upload_links").where("expires_at", "<", now).execute();
    const token = randomBytes(24).toString("base64url");
    await this.db
      .insertInto("upload_links")
      .values({
        token_hash: hashToken(token),
        principal: JSON.stringify(principal),
        files_hash: filesHash,
        expires_at: new Date(now.getTime() + UPLOAD_LINK_TTL_MS),
      })
      .execute();
    return token;
  }

  /** The link's owner and file, or null when unknown or expired. */
  async find(token: string): Promise<{ principal: Principal; hash: string } | null> {
    const row = await this.db
      .selectFrom("upload_links")
      .select(["principal", "files_hash"])
      .where("token_hash", "=", hashToken(token))
      .where("expires_at", ">", this.now())
      .executeTakeFirst();
    return row ? { principal: row.principal as Principal, hash: row.files_hash } : null;
  }

  async delete(token: string): Promise<void> {
    await this.db.deleteFrom("upload_links").where("token_hash", "=", hashToken(token)).execute();
  }
}
