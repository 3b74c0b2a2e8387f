import { WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import { issueSecret } from "../auth/secrets.js";
import type { ApiKeyRow } from "../db/schema.js";
import { newApiKeyId } from "../ids.js";
import type { ServiceDeps } from "./service-deps.js";

/** A team's API keys. The key itself is returned once, at creation; only its hash is kept. */
export class ApiKeysService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(principal: Principal, name: string): Promise<{ row: ApiKeyRow; value: string }> {
    const secret = issueSecret("api_key");
    return this.deps.audit.track(
      { teamId: principal.teamId, actor: principal.actor, action: "api_key.create", resourceType: "api_key" },
      async () => {
        const row = await this.deps.db
          .insertInto("api_keys")
          .values({
            id: newApiKeyId(),
            team_id: principal.teamId,
            name,
            prefix: secret.prefix,
            key_hash: secret.hash,
            created_by: principal.actor.id,
            last_used_at: null,
            revoked_at: null,
          })
          .returningAll()
          .executeTakeFirstOrThrow();
        return { row, value: secret.value };
      },
      (created) => created.row.id,
    );
  }

  async list(principal: Principal): Promise<ApiKeyRow[]> {
    return this.deps.db
      .selectFrom("api_keys")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
  }

  async get(principal: Principal, id: string): Promise<ApiKeyRow> {
    const row = await this.deps.db
      .selectFrom("api_keys")
      .selectAll()
      .where("id", "=", id)
      .where("team_id", "=", principal.teamId)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `API key ${id} not found`);
    return row;
  }

  async revoke(principal: Principal, id: string): Promise<void> {
    await this.get(principal, id);
    await this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "api_key.revoke",
        resourceType: "api_key",
        resourceId: id,
      },
      async () => {
        await this.deps.db
          .updateTable("api_keys")
          .set({ revoked_at: this.deps.now() })
          .where("id", "=", id)
          .where("team_id", "=", principal.teamId)
          .where("revoked_at", "is", null)
          .execute();
      },
    );
  }
}
