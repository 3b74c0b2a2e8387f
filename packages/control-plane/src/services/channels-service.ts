import { randomBytes } from "node:crypto";
import { WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import type { ChannelRow } from "../db/schema.js";
import { newChannelId } from "../ids.js";
import type { ServiceDeps } from "./service-deps.js";

/** Per-team webhook channels. The signing secret is returned once, at creation. */
export class ChannelsService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(
    principal: Principal,
    input: { name: string; url: string; events: string[] },
  ): Promise<ChannelRow> {
    return this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "channel.create",
        resourceType: "channel",
        details: { url: input.url },
      },
      () =>
        this.deps.db
          .insertInto("channels")
          .values({
            id: newChannelId(),
            team_id: principal.teamId,
            name: input.name,
            url: input.url,
            secret: `whsec_${randomBytes(24).toString("hex")}`,
            events: JSON.stringify(input.events),
          })
          .returningAll()
          .executeTakeFirstOrThrow(),
      (c) => c.id,
    );
  }

  async list(principal: Principal): Promise<ChannelRow[]> {
    return this.deps.db
      .selectFrom("channels")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .orderBy("created_at")
      .execute();
  }

  async get(principal: Principal, id: string): Promise<ChannelRow> {
    const row = await this.deps.db
      .selectFrom("channels")
      .selectAll()
      .where("id", "=", id)
      .where("team_id", "=", principal.teamId)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `channel ${id} not found`);
    return row;
  }

  async delete(principal: Principal, id: string): Promise<void> {
    await this.get(principal, id);
    await this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "channel.delete",
        resourceType: "channel",
        resourceId: id,
      },
      async () => {
        await this.deps.db
          .deleteFrom("channels")
          .where("id", "=", id)
          .where("team_id", "=", principal.teamId)
          .execute();
      },
    );
  }

  async deliveries(principal: Principal, id: string) {
    await this.get(principal, id);
    return this.deps.db
      .selectFrom("channel_deliveries")
      .selectAll()
      .where("channel_id", "=", id)
      .orderBy("created_at", "desc")
      .limit(100)
      .execute();
  }
}
