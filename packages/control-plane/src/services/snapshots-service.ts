import { randomId, WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import type { TemplateRow } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { newTemplateId } from "../ids.js";
import { endpointOf } from "./host-endpoint.js";
import type { ServiceDeps } from "./service-deps.js";

/** A team's snapshot templates (a query to narrow and order further). */
export function teamSnapshots(db: Db, teamId: string) {
  return db.selectFrom("templates").selectAll().where("team_id", "=", teamId).where("kind", "=", "snapshot");
}

/**
 * Named snapshot templates. Each lives on the host that made it, under a name of the
 * control plane's choosing (team names may repeat across teams; agent names may not).
 */
export class SnapshotsService {
  constructor(private readonly deps: ServiceDeps) {}

  async list(principal: Principal): Promise<TemplateRow[]> {
    return teamSnapshots(this.deps.db, principal.teamId).orderBy("created_at").orderBy("id").execute();
  }

  async get(principal: Principal, name: string): Promise<TemplateRow> {
    const row = await teamSnapshots(this.deps.db, principal.teamId)
      .where("name", "=", name)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `snapshot ${name} not found`);
    return row;
  }

  async create(principal: Principal, input: { sandboxId: string; name: string }): Promise<TemplateRow> {
    const { db, audit, hosts, events } = this.deps;
    return audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "snapshot.create",
        resourceType: "snapshot",
        details: { name: input.name, sandbox_id: input.sandboxId },
      },
      async () => {
        const sandbox = await db
          .selectFrom("sandboxes")
          .selectAll()
          .where("id", "=", input.sandboxId)
          .where("team_id", "=", principal.teamId)
          .executeTakeFirst();
        if (!sandbox) throw new WrennError("not_found", `sandbox ${input.sandboxId} not found`);
        if (sandbox.state !== "running" && sandbox.state !== "paused") {
          throw new WrennError(
            "conflict",
            `sandbox ${sandbox.id} is ${sandbox.state}; only running or paused sandboxes can be snapshotted`,
          );
        }
        const host = await db
          .selectFrom("hosts")
          .selectAll()
          .where("id", "=", sandbox.host_id ?? "")
          .executeTakeFirst();
        if (host?.state !== "up") throw new WrennError("unavailable", "the sandbox's host is not up");
        const baseTemplate = sandbox.snapshot_id
          ? ((
              await db
                .selectFrom("templates")
                .select("image")
                .where("id", "=", sandbox.snapshot_id)
                .executeTakeFirst()
            )?.image ?? sandbox.template)
          : sandbox.template;
        // The row is written first (it also claims the name); it goes again if the host fails.
        const template = await db
          .insertInto("templates")
          .values({
            id: newTemplateId(),
            team_id: principal.teamId,
            name: input.name,
            kind: "snapshot",
            host_id: host.id,
            agent_name: `s${randomId(19)}`,
            source_sandbox_id: sandbox.id,
            image: baseTemplate,
            vcpus: sandbox.vcpus,
            memory_mib: sandbox.memory_mib,
            disk_mib: sandbox.disk_mib,
            network_policy: JSON.stringify(sandbox.network_policy),
          })
          .onConflict((oc) => oc.columns(["team_id", "name"]).doNothing())
          .returningAll()
          .executeTakeFirst();
        if (!template) throw new WrennError("already_exists", `snapshot ${input.name} already exists`);
        let res: Awaited<ReturnType<HostAgentClient["createSnapshot"]>>;
        try {
          res = await hosts.call(endpointOf(host), (c) =>
            c.createSnapshot({
              sandboxId: sandbox.id,
              name: template.agent_name ?? "",
              leavePaused: sandbox.state === "paused",
            }),
          );
        } catch (err) {
          await db.deleteFrom("templates").where("id", "=", template.id).execute();
          throw err;
        }
        const resources = res.snapshot?.resources;
        const updated = await db
          .updateTable("templates")
          .set({
            ...(resources?.vcpus ? { vcpus: resources.vcpus } : {}),
            ...(resources?.memoryMib ? { memory_mib: resources.memoryMib } : {}),
            ...(res.snapshot?.image ? { image: res.snapshot.image } : {}),
            // The policy the agent recorded with the snapshot is the one its sandboxes get.
            ...(res.snapshot?.networkPolicy
              ? {
                  network_policy: JSON.stringify({
                    allowOut: res.snapshot.networkPolicy.allowOut,
                    denyOut: res.snapshot.networkPolicy.denyOut,
                  }),
                }
              : {}),
          })
          .where("id", "=", template.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        events.publish("snapshot.created", principal.teamId, {
          name: input.name,
          sandbox_id: sandbox.id,
          host_id: host.id,
        });
        return updated;
      },
      (t) => t.id,
    );
  }

  async delete(principal: Principal, name: string, force: boolean): Promise<void> {
    const template = await this.get(principal, name);
    const { db, audit, hosts, events } = this.deps;
    await audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "snapshot.delete",
        resourceType: "snapshot",
        resourceId: template.id,
        details: { name },
      },
      async () => {
        const host = template.host_id
          ? await db.selectFrom("hosts").selectAll().where("id", "=", template.host_id).executeTakeFirst()
          : undefined;
        if (host) {
          try {
            await hosts.call(endpointOf(host), (c) =>
              c.deleteSnapshot({ name: template.agent_name ?? "", force }),
            );
          } catch (err) {
            if (WrennError.from(err).code !== "not_found") throw err;
          }
        }
        await db.deleteFrom("templates").where("id", "=", template.id).execute();
        events.publish("snapshot.deleted", principal.teamId, { name });
      },
    );
  }
}
