import type { Logger } from "@wrenn/shared";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AuditLog } from "./audit/audit-log.js";
import type { ControlPlaneConfig } from "./config.js";
import type { Db } from "./db/database.js";
import type { HostClientPool } from "./drivers/host-pool.js";
import type { EventBus } from "./events/event-bus.js";
import type { AnyRouteSpec } from "./http/route-spec.js";
import type { Scheduler } from "./scheduler/scheduler.js";
import type { Services } from "./services/services.js";
import type { Worker } from "./workers/worker-runner.js";

/** What an extension (and every part of the control plane) is handed. */
export interface ServerContext {
  db: Db;
  scheduler: Scheduler;
  hosts: HostClientPool;
  audit: AuditLog;
  events: EventBus;
  services: Services;
  config: ControlPlaneConfig;
  logger: Logger;
  now: () => Date;
}

/**
 * Runs on every request before the core routes (after Fastify parsed the URL, before the
 * body). Throwing a WrennError answers the request with it.
 */
export type Middleware = (request: FastifyRequest, reply: FastifyReply) => Promise<void>;

export interface ExtensionRegistry {
  /** A route, documented in /openapi.json like the core ones. */
  route(spec: AnyRouteSpec): void;
  middleware(fn: Middleware): void;
  worker(worker: Worker): void;
}

/** A downstream product's additions: routes, middleware and background workers. */
export interface Extension {
  name: string;
  register(registry: ExtensionRegistry, ctx: ServerContext): void | Promise<void>;
}
