import { WrennError } from "@wrenn/shared";
import type { ExpressionBuilder } from "kysely";
import type { Actor, Principal } from "../auth/principal.js";
import { hashPresentedSecret, issueSecret } from "../auth/secrets.js";
import type { Db } from "../db/database.js";
import type { DatabaseSchema, HostRow } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { newHostId, newRegistrationTokenId, newTemplateId } from "../ids.js";
import { LIVE_STATES } from "../lifecycle/sandbox-states.js";
import type { ServiceDeps } from "./service-deps.js";

export type AgentPing = Awaited<ReturnType<HostAgentClient["ping"]>>;

/** Who may see a host: its team, and the admin team for shared hosts. */
function visibleTo(principal: Principal) {
  return (eb: ExpressionBuilder<DatabaseSchema, "hosts">) =>
    principal.isAdmin
      ? eb.or([eb("team_id", "=", principal.teamId), eb("team_id", "is", null)])
      : eb("team_id", "=", principal.teamId);
}

/** Records what a host's Ping says (capacity, load, templates) and that it was heard from. */
export async function applyPing(db: Db, hostId: string, ping: AgentPing, now: Date): Promise<HostRow> {
  const host = await db
    .updateTable("hosts")
    .set({
      state: "up",
      last_seen_at: now,
      agent_host_id: ping.hostId,
      version: ping.version,
      vmm: ping.vmm,
      accel: ping.accel,
      capacity_vcpus: ping.capacity?.vcpus ?? 0,
      capacity_memory_mib: ping.capacity?.memoryMib ?? 0,
      capacity_disk_mib: ping.capacity?.diskMib ?? 0,
      allocated_vcpus: ping.allocated?.vcpus ?? 0,
      allocated_memory_mib: ping.allocated?.memoryMib ?? 0,
      allocated_disk_mib: ping.allocated?.diskMib ?? 0,
      sandbox_count: ping.sandboxCount,
      images: JSON.stringify(ping.images),
      traffic_port: ping.trafficPort || null,
    })
    .where("id", "=", hostId)
    .returningAll()
    .executeTakeFirstOrThrow();
  // Base templates are whatever images the hosts offer; list them once each.
  for (const name of ping.images) {
    const known = await db
      .selectFrom("templates")
      .select("id")
      .where("kind", "=", "base")
      .where("team_id", "is", null)
      .where("name", "=", name)
      .executeTakeFirst();
    if (!known) {
      await db
        .insertInto("templates")
        .values({
          id: newTemplateId(),
          team_id: null,
          name,
          kind: "base",
          host_id: null,
          agent_name: name,
          source_sandbox_id: null,
          image: null,
          vcpus: null,
          memory_mib: null,
          disk_mib: null,
        })
        .execute();
    }
  }
  return host;
}

/** Hosts: creation with a one-time registration token, agent registration, listing, deletion. */
export class HostsService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(
    principal: Principal,
    input: { name: string; shared: boolean },
  ): Promise<{ host: HostRow; registrationToken: string; expiresAt: Date }> {
    if (input.shared && !principal.isAdmin) {
      throw new WrennError("permission_denied", "only the admin team may create shared hosts");
    }
    const { db, audit, config, now } = this.deps;
    return audit.track(
      { teamId: principal.teamId, actor: principal.actor, action: "host.create", resourceType: "host" },
      () =>
        db.transaction().execute(async (tx) => {
          const host = await tx
            .insertInto("hosts")
            .values({
              id: newHostId(),
              team_id: input.shared ? null : principal.teamId,
              name: input.name,
              state: "pending",
              url: null,
              agent_token: null,
              credential_hash: null,
              agent_host_id: null,
              version: null,
              vmm: null,
              accel: null,
              images: "[]",
              last_seen_at: null,
              registered_at: null,
            })
            .returningAll()
            .executeTakeFirstOrThrow();
          const token = issueSecret("registration_token");
          const expiresAt = new Date(now().getTime() + config.registrationTokenTtlSec * 1000);
          await tx
            .insertInto("host_registration_tokens")
            .values({
              id: newRegistrationTokenId(),
              host_id: host.id,
              token_hash: token.hash,
              expires_at: expiresAt,
              used_at: null,
            })
            .execute();
          return { host, registrationToken: token.value, expiresAt };
        }),
      (created) => created.host.id,
    );
  }

  /** Every host's id, name and state, for the unauthenticated health report. */
  async summaries(): Promise<Array<Pick<HostRow, "id" | "name" | "state" | "last_seen_at">>> {
    return this.deps.db
      .selectFrom("hosts")
      .select(["id", "name", "state", "last_seen_at"])
      .orderBy("created_at")
      .execute();
  }

  async list(principal: Principal): Promise<HostRow[]> {
    return this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where(visibleTo(principal))
      .orderBy("created_at")
      .execute();
  }

  async get(principal: Principal, id: string): Promise<HostRow> {
    const host = await this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where("id", "=", id)
      .where(visibleTo(principal))
      .executeTakeFirst();
    if (!host) throw new WrennError("not_found", `host ${id} not found`);
    return host;
  }

  async delete(principal: Principal, id: string): Promise<void> {
    const host = await this.get(principal, id);
    await this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "host.delete",
        resourceType: "host",
        resourceId: id,
      },
      async () => {
        const live = await this.deps.db
          .selectFrom("sandboxes")
          .select("id")
          .where("host_id", "=", host.id)
          .where("state", "in", LIVE_STATES)
          .limit(1)
          .executeTakeFirst();
        if (live) throw new WrennError("conflict", `host ${id} still has sandboxes; delete them first`);
        await this.deps.db.deleteFrom("hosts").where("id", "=", host.id).execute();
        this.deps.hosts.evict(host.id);
      },
    );
  }

  /**
   * An agent (or an operator on its behalf) trades a one-time registration token for the
   * host's long-lived credential, telling the control plane where the agent listens and
   * the token its RPCs take. The agent must answer Ping with that token first.
   */
  async register(input: {
    token: string;
    url: string;
    agentToken: string;
  }): Promise<{ host: HostRow; credential: string }> {
    const { db, hosts, now, audit, events } = this.deps;
    const hash = hashPresentedSecret("registration_token", input.token);
    const row = hash
      ? await db
          .selectFrom("host_registration_tokens")
          .selectAll()
          .where("token_hash", "=", hash)
          .executeTakeFirst()
      : undefined;
    if (!row || row.used_at !== null || row.expires_at.getTime() < now().getTime()) {
      throw new WrennError("unauthenticated", "invalid, used or expired registration token");
    }
    const actor: Actor = { type: "host", id: row.host_id };
    const hostRow = await db
      .selectFrom("hosts")
      .select("team_id")
      .where("id", "=", row.host_id)
      .executeTakeFirstOrThrow();
    return audit.track(
      {
        teamId: hostRow.team_id,
        actor,
        action: "host.register",
        resourceType: "host",
        resourceId: row.host_id,
        details: { url: input.url },
      },
      async () => {
        const endpoint = { id: row.host_id, url: input.url, agentToken: input.agentToken };
        let ping: AgentPing;
        try {
          ping = await hosts.call(endpoint, (c) => c.ping({}, { timeoutMs: this.deps.config.pingTimeoutMs }));
        } catch (err) {
          hosts.evict(row.host_id);
          throw new WrennError(
            "failed_precondition",
            `agent at ${input.url} did not answer Ping with that token: ${WrennError.from(err).message}`,
            { cause: err },
          );
        }
        const credential = issueSecret("host_credential");
        const claimed = await db
          .updateTable("host_registration_tokens")
          .set({ used_at: now() })
          .where("id", "=", row.id)
          .where("used_at", "is", null)
          .executeTakeFirst();
        if ((claimed.numUpdatedRows ?? 0n) === 0n) {
          throw new WrennError("unauthenticated", "registration token already used");
        }
        await db
          .updateTable("hosts")
          .set({
            url: input.url,
            agent_token: input.agentToken,
            credential_hash: credential.hash,
            registered_at: now(),
          })
          .where("id", "=", row.host_id)
          .execute();
        const host = await applyPing(db, row.host_id, ping, now());
        events.publish("host.up", host.team_id, { host_id: host.id, name: host.name });
        return { host, credential: credential.value };
      },
    );
  }

  /** A heartbeat pushed by the agent with its credential. */
  async heartbeat(hostId: string): Promise<HostRow> {
    return this.deps.db
      .updateTable("hosts")
      .set({ last_seen_at: this.deps.now() })
      .where("id", "=", hostId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
}
