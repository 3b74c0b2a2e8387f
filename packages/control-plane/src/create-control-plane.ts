import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { createServer as createTlsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createLogger, type Logger, listenOn } from "@wrenn/shared";
import { AuditLog } from "./audit/audit-log.js";
import { advertisedSandboxDomain, type ControlPlaneConfigInput, parseControlPlaneConfig } from "./config.js";
import { createEventTransport } from "./coordination/event-transport.js";
import { Leases } from "./coordination/leases.js";
import { ReplicaRegistry } from "./coordination/replica-registry.js";
import { createServices } from "./create-services.js";
import { type Database, openDatabase } from "./db/database.js";
import { applyMigrations, loadMigrations } from "./db/migrations.js";
import { HostClientPool } from "./drivers/host-pool.js";
import { registerE2bRoutes } from "./e2b/e2b-http.js";
import { e2bRoutes } from "./e2b/e2b-routes.js";
import { E2bService } from "./e2b/e2b-service.js";
import { e2bTemplateRoutes } from "./e2b/e2b-template-routes.js";
import { e2bVolumeContentRoutes } from "./e2b/e2b-volume-content-routes.js";
import { e2bVolumeRoutes } from "./e2b/e2b-volume-routes.js";
import { UploadLinks } from "./e2b/upload-links.js";
import { ChannelDispatcher } from "./events/channel-dispatcher.js";
import { EventBus } from "./events/event-bus.js";
import type { Extension, Middleware, ServerContext } from "./extensions.js";
import { registerDashboard } from "./http/dashboard-assets.js";
import { createHttpApp, registerRoute } from "./http/http-app.js";
import { buildOpenApiDocument } from "./http/openapi.js";
import type { AnyRouteSpec } from "./http/route-spec.js";
import { newReplicaId } from "./ids.js";
import { AutoResumer } from "./proxy/auto-resume.js";
import { resolveSandboxAddress } from "./proxy/sandbox-address.js";
import { createSandboxProxy } from "./proxy/sandbox-proxy.js";
import { authRoutes } from "./routes/auth-routes.js";
import { EventStreams, eventRoutes } from "./routes/event-routes.js";
import { hostRoutes } from "./routes/host-routes.js";
import { memberRoutes } from "./routes/member-routes.js";
import { metricsRoutes } from "./routes/metrics-routes.js";
import { miscRoutes } from "./routes/misc-routes.js";
import { sandboxGuestRoutes } from "./routes/sandbox-guest-routes.js";
import { sandboxRoutes } from "./routes/sandbox-routes.js";
import { systemRoutes } from "./routes/system-routes.js";
import { teamRoutes } from "./routes/team-routes.js";
import { templateRoutes } from "./routes/template-routes.js";
import { volumeRoutes } from "./routes/volume-routes.js";
import { Scheduler } from "./scheduler/scheduler.js";
import { SandboxStreams } from "./streams/sandbox-streams.js";
import { createBuildWorkers } from "./templates/build-workers.js";
import { createHostMonitor } from "./workers/host-monitor.js";
import { createMetricsSampler } from "./workers/metrics-sampler.js";
import { createReconciler } from "./workers/reconciler.js";
import { type Worker, WorkerRunner } from "./workers/worker-runner.js";

export const CONTROL_PLANE_VERSION = "0.1.0";

export interface ControlPlaneOptions {
  config: ControlPlaneConfigInput;
  logger?: Logger;
  extensions?: Extension[];
  version?: string;
  /** An already open database (tests share one per file); closed by the caller then. */
  database?: Database;
  /** Check every JSON response against its documented schema. */
  validateResponses?: boolean;
  /** Start the background workers (host monitor, reconciler, extensions'); default true. */
  workers?: boolean;
  now?: () => Date;
}

export interface ControlPlane {
  readonly context: ServerContext;
  readonly database: Database;
  /** http://host:port once started. */
  readonly url: string;
  /** https://host:port of the TLS listener once started; "" without one. */
  readonly tlsUrl: string;
  /** This replica's id (its row in `replicas`, the holder of its worker leases). */
  readonly replicaId: string;
  start(): Promise<void>;
  /**
   * Stops serving. `release: false` skips giving up the worker leases and the replica row,
   * as a replica that died would (failover tests).
   */
  stop(options?: { release?: boolean }): Promise<void>;
  /** Leader workers whose lease this replica holds now. */
  leases(): string[];
  /** Runs one tick of every worker now, leases aside (tests; operators' "reconcile now"). */
  runWorkersOnce(): Promise<void>;
}

/**
 * Wires the control plane in one place: config → database → migrations → host client
 * pool → scheduler → events/channels → audit → services → routes (extensions' middleware
 * first) → workers → HTTP server. Nothing listens until `start()`.
 */
export async function createControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const config = parseControlPlaneConfig(options.config);
  const logger = options.logger ?? createLogger({ level: config.logLevel, fields: { svc: "wrenn-cp" } });
  const now = options.now ?? (() => new Date());
  const version = options.version ?? CONTROL_PLANE_VERSION;

  const ownsDatabase = !options.database;
  const database =
    options.database ??
    (await openDatabase({
      databaseUrl: config.databaseUrl,
      pgliteDir: config.pgliteDir,
      onIdleConnectionError: (err) => logger.warn("idle database connection failed", { error: err.message }),
    }));
  const applied = await applyMigrations(database.db, await loadMigrations());
  if (applied.length > 0) logger.info("migrations applied", { applied, database: database.kind });

  const replica = new ReplicaRegistry(database.db, newReplicaId(), config.leaseTtlMs);
  const hosts = new HostClientPool();
  const scheduler = new Scheduler({ pausedWeight: config.pausedWeight });
  const events = new EventBus(logger, now, createEventTransport(database, logger));
  const channels = new ChannelDispatcher(database.db, logger, {
    maxAttempts: config.webhookMaxAttempts,
    retryBaseMs: config.webhookRetryBaseMs,
    timeoutMs: config.webhookTimeoutMs,
  });
  channels.attach(events);
  const audit = new AuditLog(database.db, logger);
  const deps = { db: database.db, hosts, scheduler, audit, events, config, logger, now, replica };
  const services = createServices(deps);
  const context: ServerContext = { services, events, audit, config, logger, now };

  const extensionRoutes: AnyRouteSpec[] = [];
  const middlewares: Middleware[] = [];
  const workers: Worker[] = [
    createHostMonitor(deps),
    createReconciler(deps),
    createMetricsSampler(deps, services.metrics),
    {
      name: "session-sweep",
      intervalMs: 3600_000,
      tick: async () => {
        await services.accounts.sessions.sweep();
        await services.accounts.throttle.prune();
        await replica.pruneDead();
      },
    },
    {
      name: "template-gc",
      intervalMs: 60_000,
      tick: async () => {
        await services.templateGc.collect();
      },
    },
    ...createBuildWorkers(services.templateBuilds, config.leaseRenewIntervalMs),
    {
      name: "webhook-takeover",
      mode: "every-replica",
      intervalMs: config.leaseRenewIntervalMs,
      tick: async () => void (await channels.takeOver()),
    },
  ];
  for (const extension of options.extensions ?? []) {
    await extension.register(
      {
        route: (spec) => extensionRoutes.push(spec),
        middleware: (fn) => middlewares.push(fn),
        worker: (w) => workers.push(w),
      },
      context,
    );
    logger.info("extension registered", { extension: extension.name });
  }

  const autoResumer = new AutoResumer(
    services.sandboxes,
    database.db,
    { self: replica.id, replicaTtlMs: config.leaseTtlMs, deadlineMs: config.transitionDeadlineMs },
    logger,
  );
  // Sandbox traffic is taken before routing, so API auth and body parsing never touch it.
  const proxy = createSandboxProxy({
    logger,
    domain: config.sandboxDomain,
    resolve: (sandboxId) => resolveSandboxAddress(database.db, sandboxId),
    wake: (sandboxId, teamId) => autoResumer.wake(sandboxId, teamId),
  });
  const app = createHttpApp({
    logger,
    bodyLimitBytes: config.bodyLimitBytes,
    intercept: (req, res) => proxy.request(req, res),
  });
  for (const fn of middlewares) app.addHook("onRequest", fn);
  const eventStreams = new EventStreams();
  const apiRoutes = [
    ...authRoutes(services),
    ...memberRoutes(services),
    ...teamRoutes(services),
    ...hostRoutes(services),
    ...sandboxRoutes(services, { maxTimeoutSec: config.maxTimeoutSec, maxForkCount: config.maxForkCount }),
    ...sandboxGuestRoutes(services),
    ...metricsRoutes(services),
    ...miscRoutes(services),
    ...templateRoutes(services),
    ...volumeRoutes(services),
    ...eventRoutes(events, eventStreams),
    ...extensionRoutes,
  ];
  let openApi: Record<string, unknown> | null = null;
  const routes = [
    ...systemRoutes(services.hosts, database.kind, version, () => {
      openApi ??= buildOpenApiDocument(apiRoutes, { title: "Wrenn API", version });
      return openApi;
    }),
    ...apiRoutes,
  ];
  const sessions = services.accounts.sessions;
  const routeDeps = { db: database.db, sessions, now, validateResponses: options.validateResponses ?? false };
  for (const route of routes) registerRoute(app, route, routeDeps);
  registerDashboard(app, config.dashboardDir);
  /** The TLS listener's port, once it listens. */
  let tlsPort: number | null = null;
  registerE2bRoutes(
    app,
    [
      ...e2bRoutes(services, new E2bService(database.db, services, now), {
        maxTimeoutSec: config.maxTimeoutSec,
        defaultTimeoutSec: config.defaultTimeoutSec,
        maxForkCount: config.maxForkCount,
        domain: () => advertisedSandboxDomain(config.sandboxDomain, tlsPort),
      }),
      ...e2bTemplateRoutes(services, new UploadLinks(database.db, now)),
      ...e2bVolumeRoutes(services),
      ...e2bVolumeContentRoutes(services),
    ],
    { ...routeDeps, logger },
  );

  const streams = new SandboxStreams({ db: database.db, sessions, sandboxes: services.sandboxes, now });
  // One upgrade listener tries each WebSocket endpoint; nothing else upgrades.
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (proxy.upgrade(req, socket, head)) return;
    if (streams.handleUpgrade(req, socket, head)) return;
    socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
  };
  app.server.on("upgrade", onUpgrade);
  // The TLS listener hands every request and upgrade to the same handlers.
  const tlsServer =
    config.tlsCertPath && config.tlsKeyPath
      ? createTlsServer(
          { cert: readFileSync(config.tlsCertPath), key: readFileSync(config.tlsKeyPath) },
          (req, res) => app.server.emit("request", req, res),
        ).on("upgrade", onUpgrade)
      : undefined;

  const runner = new WorkerRunner(workers, logger, {
    leases: new Leases(database.db, replica.id),
    replicas: replica,
    renewIntervalMs: config.leaseRenewIntervalMs,
    ttlMs: config.leaseTtlMs,
  });
  services.templateBuilds.gateGc(() => runner.holds("template-gc"));
  let url = "";
  let tlsUrl = "";
  let started = false;

  return {
    context,
    database,
    get url() {
      return url;
    },
    get tlsUrl() {
      return tlsUrl;
    },
    async start() {
      await events.start();
      await app.listen({ host: config.host, port: config.port });
      const address = app.server.address() as AddressInfo;
      const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
      url = `http://${host}:${address.port}`;
      started = true;
      if (tlsServer) {
        tlsPort = await listenOn(tlsServer, config.tlsPort, config.host).catch(async (err: unknown) => {
          await app.close();
          started = false;
          throw err;
        });
        tlsUrl = `https://${host}:${tlsPort}`;
      }
      // Without workers the runner still heartbeats, so other replicas see this one's builds as live.
      runner.start({ workers: options.workers ?? true });
      logger.info("control plane listening", {
        url,
        tlsUrl: tlsUrl || undefined,
        database: database.kind,
        replica: replica.id,
      });
    },
    async stop(stopOptions = {}) {
      streams.close();
      eventStreams.closeAll();
      await services.templateBuilds.stop();
      await runner.stop(stopOptions);
      proxy.close();
      if (tlsServer?.listening) {
        tlsServer.closeAllConnections();
        await new Promise((resolve) => tlsServer.close(resolve));
      }
      if (started) await app.close();
      await channels.stop();
      await events.close();
      hosts.close();
      if (ownsDatabase) await database.close();
    },
    replicaId: replica.id,
    leases: () => runner.holding(),
    runWorkersOnce: () => runner.runOnce(),
  };
}
