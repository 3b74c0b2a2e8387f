import { SYSTEM_ACTOR } from "../auth/principal.js";
import { endpointOf } from "../services/host-endpoint.js";
import { applyPing } from "../services/hosts-service.js";
import type { ServiceDeps } from "../services/service-deps.js";
import type { Worker } from "./worker-runner.js";

/**
 * The control plane's heartbeat of each registered host: its Ping, polled. A host that
 * answers is up (and its capacity and templates refreshed); one that was not up and
 * answers again publishes host.up. Marking silent hosts down is the reconciler's job.
 */
export function createHostMonitor(deps: ServiceDeps): Worker {
  return {
    name: "host-monitor",
    intervalMs: deps.config.heartbeatIntervalMs,
    async tick() {
      const hosts = await deps.db.selectFrom("hosts").selectAll().where("url", "is not", null).execute();
      await Promise.all(
        hosts.map(async (host) => {
          try {
            const ping = await deps.hosts.call(endpointOf(host), (c) =>
              c.ping({}, { timeoutMs: deps.config.pingTimeoutMs }),
            );
            await applyPing(deps.db, host.id, ping, deps.now());
            if (host.state !== "up") {
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
