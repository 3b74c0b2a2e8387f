import type { Logger } from "@wrenn/shared";
import type { AuditLog } from "../audit/audit-log.js";
import type { ControlPlaneConfig } from "../config.js";
import type { ReplicaRegistry } from "../coordination/replica-registry.js";
import type { Db } from "../db/database.js";
import type { HostClientPool } from "../drivers/host-pool.js";
import type { EventBus } from "../events/event-bus.js";
import type { Scheduler } from "../scheduler/scheduler.js";

/** What every service is built from (constructor injection; no globals). */
export interface ServiceDeps {
  db: Db;
  hosts: HostClientPool;
  scheduler: Scheduler;
  audit: AuditLog;
  events: EventBus;
  config: ControlPlaneConfig;
  logger: Logger;
  now: () => Date;
  /** This control-plane replica (its id owns the builds it runs). */
  replica: ReplicaRegistry;
}
