export { type AuditEntry, AuditLog } from "./audit/audit-log.js";
export { authenticateApiKey, presentedApiKey } from "./auth/authenticate.js";
export type { Actor, Principal } from "./auth/principal.js";
export { e2bFormOfApiKey, issueSecret } from "./auth/secrets.js";
export { bootstrapAdminTeam } from "./bootstrap.js";
export {
  type ControlPlaneConfig,
  type ControlPlaneConfigInput,
  ControlPlaneConfigSchema,
  controlPlaneConfigFromEnv,
  parseControlPlaneConfig,
} from "./config.js";
export {
  CONTROL_PLANE_VERSION,
  type ControlPlane,
  type ControlPlaneOptions,
  createControlPlane,
} from "./create-control-plane.js";
export type { Services } from "./create-services.js";
export { type Database, type DatabaseKind, type Db, openDatabase } from "./db/database.js";
export { applyMigrations, loadMigrations, MIGRATIONS_DIR } from "./db/migrations.js";
export type { DatabaseSchema } from "./db/schema.js";
export { HostClientPool } from "./drivers/host-pool.js";
export { EVENT_TYPES, EventBus, type EventType, type WrennEvent } from "./events/event-bus.js";
export {
  signWebhook,
  verifyWebhook,
  WEBHOOK_EVENT_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
} from "./events/webhook-signature.js";
export type { Extension, ExtensionRegistry, Middleware, ServerContext } from "./extensions.js";
export { type AnyRouteSpec, defineRoute, type RouteSpec } from "./http/route-spec.js";
export { type RunOptions, run } from "./run.js";
export { chooseHost, type HostLoad, type Resources } from "./scheduler/placement.js";
export { Scheduler } from "./scheduler/scheduler.js";
export type { Worker } from "./workers/worker-runner.js";
