import { randomBytes } from "node:crypto";
import { WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import { constantTimeEqual } from "../auth/secrets.js";
import type { VolumeRow } from "../db/schema.js";
import { newVolumeId } from "../ids.js";
import { endpointOf } from "./host-endpoint.js";
import type { ServiceDeps } from "./service-deps.js";

export interface CreateVolumeInput {
  name: string;
  sizeMiB?: number | undefined;
}

/** A volume mount of a create request, resolved within the caller's team. */
export interface ResolvedVolumeMounts {
  /** The one host every mounted volume lives on (the sandbox must run there). */
  hostId: string;
  mounts: Array<{ volumeId: string; path: string }>;
}

/** Where a volume's content API is served: its host agent's traffic listener. */
export interface VolumeContentRoute {
  volumeId: string;
  protocol: "http:" | "https:";
  host: string;
  port: number;
  /** Sent as `wrenn-agent-token`. */
  agentToken: string;
  /** An enrolled agent's pinned certificate; null: the system's trust. */
  pin: { certPem: string; fingerprint: string } | null;
}

const NAME_RE = /^[a-zA-Z0-9_-]{1,64}$/;
const newContentToken = (): string => `wvt_${randomBytes(24).toString("base64url")}`;

/**
 * Named persistent volumes of a team. A volume is made on one host (chosen like a sandbox's,
 * among the team's and the shared hosts that are up) and stays there; every lookup is scoped
 * to the caller's team, so another team's volume is simply not found.
 */
export class VolumesService {
  constructor(private readonly deps: ServiceDeps) {}

  async create(principal: Principal, input: CreateVolumeInput): Promise<VolumeRow> {
    const { db, config } = this.deps;
    if (!NAME_RE.test(input.name)) {
      throw new WrennError("invalid_argument", "volume name must be 1-64 of letters, digits, '_' and '-'");
    }
    const sizeMiB = input.sizeMiB ?? config.volumeSizeMiB;
    if (!Number.isInteger(sizeMiB) || sizeMiB < 16 || sizeMiB > config.volumeMaxSizeMiB) {
      throw new WrennError("invalid_argument", `volume size must be 16..${config.volumeMaxSizeMiB} MiB`);
    }
    const id = newVolumeId();
    const host = await db.transaction().execute(async (tx) => {
      const existing = await tx
        .selectFrom("volumes")
        .select(["name"])
        .where("team_id", "=", principal.teamId)
        .forUpdate()
        .execute();
      if (existing.some((v) => v.name === input.name)) {
        throw new WrennError("already_exists", `a volume named ${JSON.stringify(input.name)} already exists`);
      }
      if (existing.length >= config.maxVolumesPerTeam) {
        throw new WrennError(
          "resource_exhausted",
          `a team may have at most ${config.maxVolumesPerTeam} volumes`,
        );
      }
      const chosen = await this.deps.scheduler.place(tx, {
        teamId: principal.teamId,
        resources: { vcpus: 0, memoryMiB: 0, diskMiB: 0 },
      });
      await tx
        .insertInto("volumes")
        .values({
          id,
          team_id: principal.teamId,
          name: input.name,
          host_id: chosen.id,
          size_mib: sizeMiB,
          content_token: newContentToken(),
        })
        .execute();
      return chosen;
    });
    try {
      await this.deps.hosts.call(endpointOf(host), (c) =>
        c.createVolume({ volumeId: id, teamId: principal.teamId, name: input.name, sizeMib: sizeMiB }),
      );
    } catch (err) {
      await db.deleteFrom("volumes").where("id", "=", id).execute();
      throw WrennError.from(err);
    }
    return this.get(principal, id);
  }

  async list(principal: Principal): Promise<VolumeRow[]> {
    return this.deps.db
      .selectFrom("volumes")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .orderBy("created_at")
      .orderBy("id")
      .execute();
  }

  /** By id or by name, within the caller's team. */
  async get(principal: Principal, idOrName: string): Promise<VolumeRow> {
    const row = await this.deps.db
      .selectFrom("volumes")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `volume ${idOrName} not found`);
    return row;
  }

  /**
   * The host serving a volume's content to the holder of its token (E2B's volume token,
   * sent as `Authorization: Bearer`). A wrong token and a missing volume look the same.
   */
  async contentRoute(volumeId: string, bearer: string | undefined): Promise<VolumeContentRoute> {
    const row = await this.deps.db
      .selectFrom("volumes")
      .innerJoin("hosts", "hosts.id", "volumes.host_id")
      .select([
        "volumes.content_token",
        "hosts.url",
        "hosts.agent_token",
        "hosts.traffic_port",
        "hosts.cert_pem",
        "hosts.cert_fingerprint",
      ])
      .where("volumes.id", "=", volumeId)
      .executeTakeFirst();
    if (!bearer) {
      throw new WrennError("unauthenticated", "the volume content API needs the volume's token (Bearer)");
    }
    if (!row?.content_token || !constantTimeEqual(row.content_token, bearer)) {
      throw new WrennError("not_found", `volume ${volumeId} not found (or the token is not its)`);
    }
    if (!row.traffic_port || !row.url || !row.agent_token) {
      throw new WrennError("unavailable", `the host of volume ${volumeId} serves no traffic listener`);
    }
    const url = new URL(row.url);
    return {
      volumeId,
      protocol: url.protocol === "https:" ? "https:" : "http:",
      host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
      port: row.traffic_port,
      agentToken: row.agent_token,
      pin:
        row.cert_pem && row.cert_fingerprint
          ? { certPem: row.cert_pem, fingerprint: row.cert_fingerprint }
          : null,
    };
  }

  /** Refused (conflict) by the host while a sandbox mounts it. */
  async delete(principal: Principal, idOrName: string): Promise<void> {
    const row = await this.get(principal, idOrName);
    const host = await this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where("id", "=", row.host_id)
      .executeTakeFirst();
    if (host) {
      await this.deps.hosts
        .call(endpointOf(host), (c) => c.deleteVolume({ volumeId: row.id }))
        .catch((err: unknown) => {
          const e = WrennError.from(err);
          if (e.code !== "not_found") throw e;
        });
    }
    await this.deps.db.deleteFrom("volumes").where("id", "=", row.id).execute();
  }

  /** Resolves `[{name, path}]` in the caller's team; every volume must be on one host. */
  async resolveMounts(
    principal: Principal,
    mounts: ReadonlyArray<{ name: string; path: string }>,
  ): Promise<ResolvedVolumeMounts | undefined> {
    if (mounts.length === 0) return undefined;
    const paths = new Set<string>();
    const resolved: ResolvedVolumeMounts["mounts"] = [];
    let hostId: string | undefined;
    for (const m of mounts) {
      if (!m.path.startsWith("/") || m.path === "/" || paths.has(m.path)) {
        throw new WrennError("invalid_argument", `volume mount path ${JSON.stringify(m.path)} is not valid`);
      }
      paths.add(m.path);
      const row = await this.get(principal, m.name);
      if (hostId !== undefined && row.host_id !== hostId) {
        throw new WrennError("invalid_argument", "the mounted volumes live on different hosts");
      }
      hostId = row.host_id;
      resolved.push({ volumeId: row.id, path: m.path });
    }
    return hostId === undefined ? undefined : { hostId, mounts: resolved };
  }
}
