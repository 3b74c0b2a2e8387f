import { SYSTEM_ACTOR } from "../auth/principal.js";
import { endpointOf } from "../services/host-endpoint.js";
import { applyPing } from "../services/hosts-service.js";
import type { ServiceDeps } from "../services/service-deps.js";
import type { Worker } from "./worker-runner.js";

/**
 * The control plane's heartbeat of each registered host: its Ping, polled. A host that
 * answers is up (and its capacity and templates refreshed); one that was not up and
 * answers again publishes host.up, once: the replica whose update moved it publishes.
 * Marking silent hosts down is the reconciler's job.
 *
 * It runs on every replica: a host answering any of them is seen at once, so a replica
 * taking over (or restarted after a crash) never finds last_seen_at older than the
 * takeover took and marks a live host unreachable. A Ping is small; N replicas send N.
 */
export function createHostMonitor(deps: ServiceDeps): Worker {
  return {
    name: "host-monitor",
    mode: "every-replica",
    intervalMs: deps.config.heartbeatIntervalMs,
    async tick() {
      const hosts = await deps.db.selectFrom("hosts").selectAll().where("url", "is not", null).execute();
      await Promise.all(
        hosts.map(async (host) => {
          try {
            const ping = await deps.hosts.call(endpointOf(host), (c) =>
              c.ping({}, { timeoutMs: deps.config.pingTimeoutMs }),
            );
            const cameUp = await deps.db
              .updateTable("hosts")
              .set({ state: "up" })
              .where("id", "=", host.id)
              .where("state", "not in", ["up", "revoked"])
              .returning("id")
              .executeTakeFirst();
            await applyPing(deps.db, host.id, ping, deps.now());
            if (cameUp) {
              deps.events.publish("host.up", host.team_id, { host_id: host.id, name: host.name });
              await deps.audit.record(
                {
                  teamId: host.team_id,
                  actor: SYSTEM_ACTOR,
                  action: "host.up",
                  resourceType: "host",
                  resourceId: host.id,
                },
                "success",
              );
            }
          } catch (err) {
            deps.logger.debug("host ping failed", { host: host.id, err });
          }
        }),
      );
    },
  };
}
