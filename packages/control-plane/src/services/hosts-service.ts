import { WrennError } from "@wrenn/shared";
import type { ExpressionBuilder } from "kysely";
import type { Actor, Principal } from "../auth/principal.js";
import { issueSecret } from "../auth/secrets.js";
import type { DatabaseSchema, HostRow } from "../db/schema.js";
import { newHostId, newRegistrationTokenId } from "../ids.js";
import { LIVE_STATES } from "../lifecycle/sandbox-states.js";
import {
  claimableRegistrationToken,
  type EnrolInput,
  enrolHost,
  type IssuedHostCredentials,
  refreshHostCredentials,
  spendRegistrationToken,
} from "./host-enrolment.js";
import { applyPing, pingNewAgent } from "./host-ping.js";
import type { ServiceDeps } from "./service-deps.js";

export { type AgentPing, applyPing } from "./host-ping.js";

/** Who may see a host: its team, and the admin team for shared hosts. */
function visibleTo(principal: Principal) {
  return (eb: ExpressionBuilder<DatabaseSchema, "hosts">) =>
    principal.isAdmin
      ? eb.or([eb("team_id", "=", principal.teamId), eb("team_id", "is", null)])
      : eb("team_id", "=", principal.teamId);
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
    const row = await claimableRegistrationToken(db, input.token, now());
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
        const ping = await pingNewAgent(hosts, endpoint, this.deps.config.pingTimeoutMs, "with that token");
        const credential = issueSecret("host_credential");
        await spendRegistrationToken(db, row.id, now());
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

  /** An agent enrolling itself with its certificate (see host-enrolment.ts). */
  async enrol(input: EnrolInput): Promise<{ host: HostRow; issued: IssuedHostCredentials }> {
    return enrolHost(this.deps, input);
  }

  /** An enrolled agent trades its refresh token for the next credential pair. */
  async refresh(refreshToken: string): Promise<IssuedHostCredentials> {
    return refreshHostCredentials(this.deps, refreshToken);
  }

  /** Sets a host's tags and/or draining flag. */
  async patch(
    principal: Principal,
    id: string,
    input: { tags?: Record<string, string> | undefined; draining?: boolean | undefined },
  ): Promise<HostRow> {
    const host = await this.get(principal, id);
    if (host.team_id === null && !principal.isAdmin) {
      throw new WrennError("permission_denied", "only the admin team may change shared hosts");
    }
    return this.deps.audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: input.draining === undefined ? "host.update" : input.draining ? "host.drain" : "host.undrain",
        resourceType: "host",
        resourceId: id,
        details: {
          ...(input.tags ? { tags: input.tags } : {}),
          ...(input.draining !== undefined ? { draining: input.draining } : {}),
        },
      },
      () =>
        this.deps.db
          .updateTable("hosts")
          .set({
            ...(input.tags ? { tags: JSON.stringify(input.tags) } : {}),
            ...(input.draining !== undefined ? { draining: input.draining } : {}),
          })
          .where("id", "=", host.id)
          .returningAll()
          .executeTakeFirstOrThrow(),
    );
  }

  /** A heartbeat pushed by the agent with its credential: the agent is alive (whether or not the control plane reaches it). */
  async heartbeat(hostId: string, certFingerprint?: string | undefined): Promise<HostRow> {
    return this.deps.db
      .updateTable("hosts")
      .set({
        agent_seen_at: this.deps.now(),
        ...(certFingerprint ? { agent_cert_fingerprint: certFingerprint } : {}),
      })
      .where("id", "=", hostId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
}
