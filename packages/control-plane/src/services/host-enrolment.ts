import { X509Certificate } from "node:crypto";
import { WrennError } from "@wrenn/shared";
import {
  decideRefresh,
  derivePairFrom,
  type HostCredentialPair,
  newDeriveKey,
  newPair,
} from "../auth/host-refresh.js";
import type { Actor } from "../auth/principal.js";
import { hashPresentedSecret } from "../auth/secrets.js";
import type { Db } from "../db/database.js";
import type { HostRegistrationTokensTable, HostRow } from "../db/schema.js";
import { applyPing, pingNewAgent } from "./host-ping.js";
import type { ServiceDeps } from "./service-deps.js";

/** What an enrolled agent is handed: shown once, stored only as hashes. */
export interface IssuedHostCredentials {
  hostId: string;
  credential: string;
  expiresAt: Date;
  refreshToken: string;
}

type TokenRow = { id: string; host_id: string } & Pick<HostRegistrationTokensTable, "expires_at" | "used_at">;

/** A registration token that may still be spent, or registration_token_invalid. */
export async function claimableRegistrationToken(db: Db, token: string, now: Date): Promise<TokenRow> {
  const hash = hashPresentedSecret("registration_token", token);
  const row = hash
    ? await db
        .selectFrom("host_registration_tokens")
        .select(["id", "host_id", "expires_at", "used_at"])
        .where("token_hash", "=", hash)
        .executeTakeFirst()
    : undefined;
  if (!row || row.used_at !== null || row.expires_at.getTime() < now.getTime()) {
    throw new WrennError("registration_token_invalid", "invalid, used or expired registration token");
  }
  return row;
}

/** Spends a registration token inside `db`'s transaction; a concurrent spender loses. */
export async function spendRegistrationToken(db: Db, id: string, now: Date): Promise<void> {
  const claimed = await db
    .updateTable("host_registration_tokens")
    .set({ used_at: now })
    .where("id", "=", id)
    .where("used_at", "is", null)
    .executeTakeFirst();
  if ((claimed.numUpdatedRows ?? 0n) === 0n) {
    throw new WrennError("registration_token_invalid", "registration token already used");
  }
}

/** The agent's self-signed certificate and the fingerprint the control plane pins. */
export function parseAgentCertificate(pem: string, now: Date): { pem: string; fingerprint: string } {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (err) {
    throw new WrennError("invalid_argument", "cert_pem: not a PEM X.509 certificate", { cause: err });
  }
  if (
    new Date(cert.validTo).getTime() < now.getTime() ||
    new Date(cert.validFrom).getTime() > now.getTime()
  ) {
    throw new WrennError("invalid_argument", `cert_pem: not valid now (${cert.validFrom} – ${cert.validTo})`);
  }
  return { pem: cert.toString(), fingerprint: cert.fingerprint256 };
}

/**
 * Writes a host's current credentials: the access credential's hash and expiry, and the
 * refresh token as its newest row (child of `parentHash` when a refresh issued it).
 */
async function storePair(
  db: Db,
  hostId: string,
  pair: HostCredentialPair,
  expiresAt: Date,
  parentHash: string | null,
): Promise<void> {
  await db
    .updateTable("hosts")
    .set({
      credential_hash: pair.credential.hash,
      credential_expires_at: expiresAt,
      credential_used_at: null,
    })
    .where("id", "=", hostId)
    .execute();
  await db
    .insertInto("host_refresh_tokens")
    .values({
      token_hash: pair.refreshToken.hash,
      host_id: hostId,
      parent_hash: parentHash,
      used_at: null,
      derive_key: newDeriveKey(),
    })
    .execute();
}

/** A host's first credentials (enrolment), inside the caller's transaction. */
export async function issueInitialCredentials(
  db: Db,
  hostId: string,
  now: Date,
  ttlSec: number,
): Promise<IssuedHostCredentials> {
  const pair = newPair();
  const expiresAt = new Date(now.getTime() + ttlSec * 1000);
  await storePair(db, hostId, pair, expiresAt, null);
  return { hostId, credential: pair.credential.value, expiresAt, refreshToken: pair.refreshToken.value };
}

/**
 * Trades a refresh token for the next pair (see auth/host-refresh.ts). A reused token
 * revokes its host: credentials cleared, state `revoked`, audit `host.credential_reuse`.
 */
export async function refreshHostCredentials(
  deps: Pick<ServiceDeps, "db" | "now" | "audit" | "hosts" | "config" | "events">,
  presented: string,
): Promise<IssuedHostCredentials> {
  const { db, now, audit } = deps;
  const hash = hashPresentedSecret("host_refresh", presented);
  const outcome = await db.transaction().execute(async (tx) => {
    const row = hash
      ? await tx
          .selectFrom("host_refresh_tokens")
          .selectAll()
          .where("token_hash", "=", hash)
          .forUpdate()
          .executeTakeFirst()
      : undefined;
    const host = row
      ? await tx.selectFrom("hosts").selectAll().where("id", "=", row.host_id).forUpdate().executeTakeFirst()
      : undefined;
    const successor = row?.used_at
      ? await tx
          .selectFrom("host_refresh_tokens")
          .selectAll()
          .where("parent_hash", "=", row.token_hash)
          .executeTakeFirst()
      : undefined;
    const decision = decideRefresh({
      presented: row && host ? { used: row.used_at !== null } : undefined,
      successor: successor ? { used: successor.used_at !== null } : undefined,
      successorCredentialUsed: host?.credential_used_at != null,
      hostRevoked: host?.state === "revoked",
    });
    if (decision === "unknown" || !row || !host) return { decision: "unknown" as const };
    if (decision === "revoked") return { decision, host };
    if (decision === "reuse") {
      await tx
        .updateTable("hosts")
        .set({
          state: "revoked",
          credential_hash: null,
          credential_expires_at: null,
          url: null,
          agent_token: null,
        })
        .where("id", "=", host.id)
        .execute();
      return { decision, host };
    }
    const pair = derivePairFrom(row.derive_key, presented);
    const issued = (expiresAt: Date): IssuedHostCredentials => ({
      hostId: host.id,
      credential: pair.credential.value,
      expiresAt,
      refreshToken: pair.refreshToken.value,
    });
    if (decision === "replay") return { decision, host, issued: issued(host.credential_expires_at ?? now()) };
    const expiresAt = new Date(now().getTime() + deps.config.hostCredentialTtlSec * 1000);
    await tx
      .updateTable("host_refresh_tokens")
      .set({ used_at: now() })
      .where("token_hash", "=", row.token_hash)
      .execute();
    await storePair(tx, host.id, pair, expiresAt, row.token_hash);
    return { decision, host, issued: issued(expiresAt) };
  });
  if (outcome.decision === "unknown") {
    throw new WrennError("unauthenticated", "invalid refresh token");
  }
  const actor: Actor = { type: "host", id: outcome.host.id };
  if (outcome.decision === "revoked") {
    throw new WrennError(
      "host_revoked",
      `host ${outcome.host.id} is revoked; delete it and enrol the agent as a new host (new token, its identity/enrolment.json removed)`,
    );
  }
  if (outcome.decision === "reuse") {
    deps.hosts.evict(outcome.host.id);
    deps.events.publish("host.down", outcome.host.team_id, {
      host_id: outcome.host.id,
      name: outcome.host.name,
      reason: "revoked",
    });
    await audit.record(
      {
        teamId: outcome.host.team_id,
        actor,
        action: "host.credential_reuse",
        resourceType: "host",
        resourceId: outcome.host.id,
        details: { revoked: true },
      },
      "failure",
      "refresh_token_reused",
    );
    throw new WrennError(
      "refresh_token_reused",
      `a spent refresh token of host ${outcome.host.id} was presented again: the host is revoked`,
    );
  }
  return outcome.issued;
}

/** The enrolment request, as the route parsed it. */
export interface EnrolInput {
  token: string;
  url: string;
  agentToken: string;
  certPem: string;
  tags: Record<string, string>;
}

/**
 * An agent enrols itself: the control plane Pings it back over TLS pinned to the certificate
 * it sent, and only then spends the registration token and stores the pin, the tags and the
 * first credentials. A bad token or a failed Ping leaves the host row as it was.
 */
export async function enrolHost(
  deps: ServiceDeps,
  input: EnrolInput,
): Promise<{ host: HostRow; issued: IssuedHostCredentials }> {
  const { db, hosts, now, audit, events, config } = deps;
  const token = await claimableRegistrationToken(db, input.token, now());
  if (!input.url.startsWith("https://")) {
    throw new WrennError(
      "invalid_argument",
      "url: an enrolling agent is reached over https:// (its pinned certificate)",
    );
  }
  const cert = parseAgentCertificate(input.certPem, now());
  const hostRow = await db
    .selectFrom("hosts")
    .select(["team_id", "tags"])
    .where("id", "=", token.host_id)
    .executeTakeFirstOrThrow();
  return audit.track(
    {
      teamId: hostRow.team_id,
      actor: { type: "host", id: token.host_id },
      action: "host.enrol",
      resourceType: "host",
      resourceId: token.host_id,
      details: { url: input.url, cert_fingerprint: cert.fingerprint, tags: input.tags },
    },
    async () => {
      const endpoint = {
        id: token.host_id,
        url: input.url,
        agentToken: input.agentToken,
        certPem: cert.pem,
        certFingerprint: cert.fingerprint,
      };
      const ping = await pingNewAgent(
        hosts,
        endpoint,
        config.pingTimeoutMs,
        "over TLS pinned to its certificate",
      );
      const issued = await db.transaction().execute(async (tx) => {
        await spendRegistrationToken(tx, token.id, now());
        await tx
          .updateTable("hosts")
          .set({
            url: input.url,
            agent_token: input.agentToken,
            cert_pem: cert.pem,
            cert_fingerprint: cert.fingerprint,
            tags: JSON.stringify({ ...hostRow.tags, ...input.tags }),
            registered_at: now(),
          })
          .where("id", "=", token.host_id)
          .execute();
        return issueInitialCredentials(tx, token.host_id, now(), config.hostCredentialTtlSec);
      });
      // The credentials are issued: the agent must get them. The host monitor brings the host
      // up at its next Ping should this fail (a database hiccup).
      const host = await applyPing(db, token.host_id, ping, now()).then(
        (up) => {
          events.publish("host.up", up.team_id, { host_id: up.id, name: up.name });
          return up;
        },
        async (err: unknown) => {
          deps.logger.warn("enrolled host not marked up yet", { host: token.host_id, err });
          return db.selectFrom("hosts").selectAll().where("id", "=", token.host_id).executeTakeFirstOrThrow();
        },
      );
      return { host, issued };
    },
  );
}
