import type { Logger } from "@wrenn/shared";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AuditLog } from "./audit/audit-log.js";
import type { ControlPlaneConfig } from "./config.js";
import type { Services } from "./create-services.js";
import type { EventBus } from "./events/event-bus.js";
import type { AnyRouteSpec } from "./http/route-spec.js";
import type { Worker } from "./workers/worker-runner.js";

/**
 * What an extension is handed: the services (the same ones the core routes call, with
 * their team scoping, state machine and audit), the event bus and the audit log. Not the
 * database or the host agents' clients: an extension that wrote rows or called agents
 * directly would bypass every rule the services keep.
 */
export interface ServerContext {
  services: Services;
  events: EventBus;
  audit: AuditLog;
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
