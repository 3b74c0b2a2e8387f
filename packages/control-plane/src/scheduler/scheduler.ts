import { WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import type { Db } from "../db/database.js";
import type { HostRow } from "../db/schema.js";
import {
  allocatedByDatabase,
  chooseHost,
  combinedAllocation,
  type HostLoad,
  type Resources,
} from "./placement.js";

export interface PlacementRequest {
  teamId: string;
  resources: Resources;
  /** A base template every candidate host must offer. */
  baseTemplate?: string;
  /** Only this host may take it (snapshot templates live on the host that made them). */
  requiredHostId?: string;
  /** Only these hosts may take it (the hosts holding a template's snapshot). */
  allowedHostIds?: readonly string[];
  /** Only hosts whose tags include all of these. */
  requiredTags?: Readonly<Record<string, string>>;
}

/** `zone=a, gpu=h100`, for error messages. */
export function describeTags(tags: Readonly<Record<string, string>>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(", ");
}

/**
 * Chooses a host for a new sandbox inside the caller's transaction: candidate host rows
 * are locked (FOR UPDATE) so concurrent creates see each other's pending sandboxes and
 * never overbook a host.
 */
export class Scheduler {
  constructor(private readonly options: { pausedWeight: number }) {}

  /**
   * Hosts a team may place on: its own and the shared ones, up and not draining, carrying
   * every required tag (jsonb containment, the same on PGlite and PostgreSQL).
   */
  async candidateHosts(
    db: Db,
    teamId: string,
    lock: boolean,
    requiredTags?: Readonly<Record<string, string>>,
  ): Promise<HostRow[]> {
    let query = db
      .selectFrom("hosts")
      .selectAll()
      .where("state", "=", "up")
      .where("draining", "=", false)
      .where((eb) => eb.or([eb("team_id", "=", teamId), eb("team_id", "is", null)]))
      .orderBy("id");
    if (requiredTags && Object.keys(requiredTags).length > 0) {
      query = query.where(sql<boolean>`tags @> ${JSON.stringify(requiredTags)}::jsonb`);
    }
    if (lock) query = query.forUpdate();
    return query.execute();
  }

  /** Why a host named by the request cannot take it: draining is the caller's to know. */
  private async refuseRequiredHost(db: Db, hostId: string): Promise<never> {
    const row = await db.selectFrom("hosts").select(["draining"]).where("id", "=", hostId).executeTakeFirst();
    if (row?.draining) {
      throw new WrennError("host_draining", `host ${hostId} is draining: it takes no new sandboxes`);
    }
    throw new WrennError("no_capacity", "the host holding this snapshot is not up");
  }

  async loads(db: Db, hosts: HostRow[]): Promise<HostLoad[]> {
    if (hosts.length === 0) return [];
    const rows = await db
      .selectFrom("sandboxes")
      .select(["host_id", "state", "vcpus", "memory_mib", "disk_mib"])
      .where(
        "host_id",
        "in",
        hosts.map((h) => h.id),
      )
      .where("state", "not in", ["stopped", "error"])
      .execute();
    return hosts.map((host) => {
      const mine = rows
        .filter((r) => r.host_id === host.id)
        .map((r) => ({ state: r.state, vcpus: r.vcpus, memoryMiB: r.memory_mib, diskMiB: r.disk_mib }));
      return {
        hostId: host.id,
        capacity: {
          vcpus: host.capacity_vcpus,
          memoryMiB: host.capacity_memory_mib,
          diskMiB: host.capacity_disk_mib,
        },
        allocated: combinedAllocation(
          {
            vcpus: host.allocated_vcpus,
            memoryMiB: host.allocated_memory_mib,
            diskMiB: host.allocated_disk_mib,
          },
          allocatedByDatabase(mine, this.options.pausedWeight),
        ),
      };
    });
  }

  async place(db: Db, request: PlacementRequest): Promise<HostRow> {
    const tags = request.requiredTags;
    let hosts = await this.candidateHosts(db, request.teamId, true, tags);
    if (request.requiredHostId) {
      hosts = hosts.filter((h) => h.id === request.requiredHostId);
      if (hosts.length === 0) return this.refuseRequiredHost(db, request.requiredHostId);
    }
    if (hosts.length === 0) {
      if (tags && Object.keys(tags).length > 0) {
        throw new WrennError(
          "no_capacity",
          `no host that is up and not draining has the tags ${describeTags(tags)}`,
        );
      }
      throw new WrennError("no_capacity", "no host is up (and not draining) to run sandboxes");
    }
    if (request.allowedHostIds) {
      const allowed = new Set(request.allowedHostIds);
      hosts = hosts.filter((h) => allowed.has(h.id));
      if (hosts.length === 0) throw new WrennError("no_capacity", "no host holding this template is up");
    }
    if (request.baseTemplate) {
      const template = request.baseTemplate;
      hosts = hosts.filter((h) => h.images.includes(template));
      if (hosts.length === 0) {
        throw new WrennError("invalid_argument", `template: no host offers template "${template}"`);
      }
    }
    const placement = chooseHost(request.resources, await this.loads(db, hosts));
    if (!placement) {
      throw new WrennError(
        "no_capacity",
        `no host has room for ${request.resources.vcpus} vCPU, ${request.resources.memoryMiB} MiB memory, ${request.resources.diskMiB} MiB disk`,
      );
    }
    const host = hosts.find((h) => h.id === placement.hostId);
    if (!host) throw new WrennError("internal", "placement chose an unknown host");
    return host;
  }
}
