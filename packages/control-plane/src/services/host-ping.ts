import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { HostRow } from "../db/schema.js";
import type { HostAgentClient, HostClientPool, HostEndpoint } from "../drivers/host-pool.js";
import { newTemplateId } from "../ids.js";

export type AgentPing = Awaited<ReturnType<HostAgentClient["ping"]>>;

/**
 * Pings an agent being registered at the endpoint it gave, before anything is stored: an
 * agent that does not answer (`how` says with what) fails the registration with
 * failed_precondition, and its pooled client goes.
 */
export async function pingNewAgent(
  hosts: HostClientPool,
  endpoint: HostEndpoint & { url: string },
  timeoutMs: number,
  how: string,
): Promise<AgentPing> {
  try {
    return await hosts.call(endpoint, (c) => c.ping({}, { timeoutMs }));
  } catch (err) {
    hosts.evict(endpoint.id);
    throw new WrennError(
      "failed_precondition",
      `agent at ${endpoint.url} did not answer Ping ${how}: ${WrennError.from(err).message}`,
      { cause: err },
    );
  }
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
    // A revoked host stays revoked whatever a Ping under way says.
    .where("state", "!=", "revoked")
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
        // Another replica's Ping listed it first (templates_base_name).
        .onConflict((oc) => oc.doNothing())
        .execute();
    }
  }
  return host;
}
