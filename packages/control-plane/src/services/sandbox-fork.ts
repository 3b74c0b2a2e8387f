import { randomBytes } from "node:crypto";
import type { Principal } from "../auth/principal.js";
import type { SandboxRow } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { rowFieldsFromAgent } from "./sandbox-info.js";
import { trafficTokenFor } from "./sandbox-network.js";
import type { ServiceDeps } from "./service-deps.js";

/**
 * Forks running sandbox `row` into `count` new ones on its host: places them there, asks
 * the agent (through `onHost`), and writes a row for each fork it made, in its order.
 */
export async function forkSandbox(
  deps: ServiceDeps,
  principal: Principal,
  row: SandboxRow,
  count: number,
  metadata: Record<string, string>,
  onHost: <T>(rpc: (client: HostAgentClient) => Promise<T>) => Promise<T>,
): Promise<SandboxRow[]> {
  const { db, scheduler, events } = deps;
  await db.transaction().execute((tx) =>
    scheduler.place(tx, {
      teamId: principal.teamId,
      requiredHostId: row.host_id ?? "",
      resources: {
        vcpus: row.vcpus * count,
        memoryMiB: row.memory_mib * count,
        diskMiB: row.disk_mib * count,
      },
    }),
  );
  // Each fork gets its own envd token; the agent answers in the order asked.
  const envdAccessTokens = Array.from({ length: count }, () => randomBytes(24).toString("hex"));
  const res = await onHost((c) => c.forkSandbox({ sandboxId: row.id, count, metadata, envdAccessTokens }));
  const rows: SandboxRow[] = [];
  for (const [index, info] of res.sandboxes.entries()) {
    const fields = rowFieldsFromAgent(info);
    const inserted = await db
      .insertInto("sandboxes")
      .values({
        id: info.sandboxId,
        team_id: principal.teamId,
        host_id: row.host_id,
        template: row.template,
        snapshot_id: row.snapshot_id,
        template_build_id: row.template_build_id,
        state: "running",
        vcpus: fields.vcpus ?? row.vcpus,
        memory_mib: fields.memory_mib ?? row.memory_mib,
        disk_mib: fields.disk_mib ?? row.disk_mib,
        timeout_sec: info.timeoutSec || row.timeout_sec,
        metadata: JSON.stringify({ ...row.metadata, ...metadata }),
        envd_access_token: envdAccessTokens[index] ?? row.envd_access_token,
        on_timeout: row.on_timeout,
        on_timeout_keep_memory: row.on_timeout_keep_memory,
        auto_resume: row.auto_resume,
        network_policy: fields.network_policy ?? JSON.stringify(row.network_policy),
        traffic_access_token: row.traffic_access_token ? trafficTokenFor(false) : null,
        mask_request_host: row.mask_request_host,
        host_ip: fields.host_ip ?? null,
        error: null,
        expires_at: fields.expires_at ?? null,
        stopped_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    rows.push(inserted);
    events.publish("sandbox.created", principal.teamId, { sandbox_id: inserted.id, forked_from: row.id });
    events.publish("sandbox.running", principal.teamId, { sandbox_id: inserted.id, host_id: row.host_id });
  }
  return rows;
}
