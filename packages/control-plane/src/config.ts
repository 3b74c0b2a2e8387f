import { homedir } from "node:os";
import { join } from "node:path";
import { DASHBOARD_DIST_DIR } from "@wrenn/dashboard";
import { definedEntries, envNumber, WrennError } from "@wrenn/shared";
import { z } from "zod";

/**
 * The control plane's options, validated once at start. `controlPlaneConfigFromEnv` is
 * the only place environment variables are read; each field names its variable.
 */
export const ControlPlaneConfigSchema = z.object({
  /** WRENN_CP_HOST, default 127.0.0.1. */
  host: z.string().min(1).default("127.0.0.1"),
  /** WRENN_CP_PORT, default 8080; 0 picks a free port (tests). */
  port: z.number().int().min(0).max(65535).default(8080),
  /** PostgreSQL connection string. DATABASE_URL; unset means embedded PGlite. */
  databaseUrl: z.string().min(1).optional(),
  /**
   * Where embedded PGlite keeps its files, or "memory" for an in-memory database (tests).
   * WRENN_CP_PGLITE_DIR, default $WRENN_DIR/cp/pglite.
   */
  pgliteDir: z
    .string()
    .min(1)
    .default(join(homedir(), ".wrenn", "cp", "pglite")),
  /**
   * Sandbox traffic for `<port>-<sandboxId>.<domain>` hosts is proxied when set (E2B_DOMAIN
   * style); header-routed traffic (`E2b-Sandbox-Id`) works without it. WRENN_SANDBOX_DOMAIN.
   */
  sandboxDomain: z
    .string()
    .regex(/^[a-z0-9.-]+$/)
    .optional(),
  /**
   * A second, TLS listener serving the same API and sandbox traffic, for clients that
   * reach Wrenn as `https://api.<domain>` and `https://<port>-<id>.<domain>` (the e2b
   * SDK with E2B_DOMAIN). Both paths set: on. WRENN_CP_TLS_CERT / WRENN_CP_TLS_KEY (PEM).
   */
  tlsCertPath: z.string().min(1).optional(),
  tlsKeyPath: z.string().min(1).optional(),
  /** WRENN_CP_TLS_PORT, default 443; 0 picks a free port (tests). */
  tlsPort: z.number().int().min(0).max(65535).default(443),
  /** How often each registered host's Ping is polled as its heartbeat. WRENN_CP_HEARTBEAT_INTERVAL_MS. */
  heartbeatIntervalMs: z.number().int().min(10).default(2000),
  /** A host silent for longer is unreachable and its sandboxes missing. WRENN_CP_HOST_DEADLINE_MS. */
  hostDeadlineMs: z.number().int().min(10).default(15_000),
  /** Timeout of one heartbeat Ping. */
  pingTimeoutMs: z.number().int().min(10).default(3000),
  /** How often the database is compared with the agents' ListSandboxes. WRENN_CP_RECONCILE_INTERVAL_MS. */
  reconcileIntervalMs: z.number().int().min(10).default(5000),
  /**
   * A sandbox still `pending`, or a snapshot template its agent does not hold, this long
   * after its row was written is the leftover of a control plane that died mid-operation:
   * the reconciler settles it. Longer than the slowest create (one that first rebuilds its
   * template on the host). WRENN_CP_TRANSITION_DEADLINE_MS.
   */
  transitionDeadlineMs: z.number().int().min(10).default(600_000),
  /**
   * A VM an agent runs that has no sandbox row (or a stopped one) this long after the agent
   * made it is destroyed by the reconciler; the grace covers a fork whose rows are being
   * written. WRENN_CP_ORPHAN_GRACE_MS.
   */
  orphanGraceMs: z.number().int().min(10).default(120_000),
  /** Host registration tokens expire after this. */
  registrationTokenTtlSec: z
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  /**
   * An enrolled agent's access credential lasts this long; the agent trades its rotating
   * refresh token for the next one at ~80 % of it. WRENN_CP_HOST_CREDENTIAL_TTL_SEC.
   */
  hostCredentialTtlSec: z.number().int().min(2).default(3600),
  /** Fraction of a paused sandbox's memory and vCPUs the scheduler still counts (it may resume). */
  pausedWeight: z.number().min(0).max(1).default(0.25),
  /** Sizes when a create request gives none. */
  defaultVcpus: z.number().int().min(1).default(1),
  defaultMemoryMiB: z.number().int().min(128).default(512),
  defaultDiskMiB: z.number().int().min(256).default(2048),
  defaultTimeoutSec: z.number().int().min(1).default(300),
  maxTimeoutSec: z
    .number()
    .int()
    .min(1)
    .default(24 * 3600),
  /** Size of a new volume (MiB) and the most one may have. WRENN_VOLUME_SIZE_MIB / WRENN_VOLUME_MAX_SIZE_MIB. */
  volumeSizeMiB: z.number().int().min(16).default(1024),
  volumeMaxSizeMiB: z
    .number()
    .int()
    .min(16)
    .default(16 * 1024),
  /** Volumes one team may have. WRENN_VOLUMES_PER_TEAM. */
  maxVolumesPerTeam: z.number().int().min(0).default(20),
  /** How often the metrics sampler samples every running sandbox and writes team totals. WRENN_METRICS_SAMPLE_MS. */
  metricsSampleMs: z.number().int().min(100).default(10_000),
  /** Sandboxes the sampler asks their agents about at once. WRENN_METRICS_SAMPLE_CONCURRENCY. */
  metricsSampleConcurrency: z.number().int().min(1).default(8),
  /** Metric rows older than this are deleted (in batches, by the sampler). WRENN_METRICS_RETENTION_HOURS. */
  metricsRetentionHours: z.number().min(0.01).default(168),
  /** Largest number of sandboxes one fork request may make. */
  maxForkCount: z.number().int().min(1).default(16),
  /** Webhook delivery: attempts per event and the first retry delay (doubled each time). */
  webhookMaxAttempts: z.number().int().min(1).default(6),
  webhookRetryBaseMs: z.number().int().min(1).default(1000),
  webhookTimeoutMs: z.number().int().min(100).default(10_000),
  /** Largest JSON request body, bytes. File uploads stream and are not bound by it. */
  bodyLimitBytes: z
    .number()
    .int()
    .min(1024)
    .default(4 * 1024 * 1024),
  /**
   * Where copy steps' uploaded archives are kept (content-addressed per team), so any host can
   * build or rebuild a template. WRENN_CP_TEMPLATE_FILES_DIR, default $WRENN_DIR/cp/template-files.
   */
  templateFilesDir: z
    .string()
    .min(1)
    .default(join(homedir(), ".wrenn", "cp", "template-files")),
  /** Largest copy-step archive accepted, bytes. */
  templateFileMaxBytes: z
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 * 1024 * 1024),
  /**
   * How often each replica heartbeats and renews its worker leases. WRENN_CP_LEASE_RENEW_MS.
   * A dead replica's leases and builds pass to another within leaseTtlMs + this.
   */
  leaseRenewIntervalMs: z.number().int().min(10).default(2000),
  /** A worker lease (and a replica's heartbeat) not renewed for this long is taken over. WRENN_CP_LEASE_TTL_MS. */
  leaseTtlMs: z.number().int().min(30).default(6000),
  /** Template builds run at once, counted over every replica; more wait (status "waiting"). WRENN_CP_MAX_BUILDS. */
  maxConcurrentBuilds: z.number().int().min(1).default(2),
  /** One build step's time limit. WRENN_CP_BUILD_STEP_TIMEOUT_SEC. */
  buildStepTimeoutSec: z.number().int().min(1).default(3600),
  /** A browser session ends after this long unused (each use moves it on). WRENN_CP_SESSION_TTL_SEC, default 14 days. */
  sessionTtlSec: z
    .number()
    .int()
    .min(60)
    .default(14 * 24 * 3600),
  /** Invitation tokens expire after this. WRENN_CP_INVITATION_TTL_SEC, default 7 days. */
  invitationTtlSec: z
    .number()
    .int()
    .min(60)
    .default(7 * 24 * 3600),
  /** Failed sign-ins allowed per email and per client address within signinWindowSec. */
  signinMaxFailuresPerEmail: z.number().int().min(1).default(5),
  signinMaxFailuresPerIp: z.number().int().min(1).default(20),
  signinWindowSec: z
    .number()
    .int()
    .min(1)
    .default(15 * 60),
  /**
   * The built web dashboard, served at `/` (an empty string serves none).
   * WRENN_CP_DASHBOARD_DIR, default the @wrenn/dashboard package's dist/.
   */
  dashboardDir: z.string().default(DASHBOARD_DIST_DIR),
  /** Log level. WRENN_LOG_LEVEL. */
  logLevel: z.enum(["debug", "info", "warn", "error"]).default("info"),
});

export type ControlPlaneConfig = z.infer<typeof ControlPlaneConfigSchema>;

/**
 * The domain clients are told sandboxes live under (the e2b API's `domain`): the sandbox
 * domain, with the TLS listener's port when that is not 443 — the e2b SDK puts no port of
 * its own into `https://<port>-<id>.<domain>`.
 */
export function advertisedSandboxDomain(domain: string | undefined, tlsPort: number | null): string | null {
  if (!domain) return null;
  return tlsPort !== null && tlsPort !== 443 ? `${domain}:${tlsPort}` : domain;
}
export type ControlPlaneConfigInput = z.input<typeof ControlPlaneConfigSchema>;

export function parseControlPlaneConfig(input: unknown): ControlPlaneConfig {
  const config = ControlPlaneConfigSchema.parse(input);
  if (Boolean(config.tlsCertPath) !== Boolean(config.tlsKeyPath)) {
    throw new WrennError("invalid_argument", "WRENN_CP_TLS_CERT and WRENN_CP_TLS_KEY go together");
  }
  if (config.leaseTtlMs < 2 * config.leaseRenewIntervalMs) {
    throw new WrennError(
      "invalid_argument",
      "WRENN_CP_LEASE_TTL_MS must be at least twice WRENN_CP_LEASE_RENEW_MS",
    );
  }
  return config;
}

/** Reads the control plane's environment variables into an (unvalidated) options object. */
export function controlPlaneConfigFromEnv(env: NodeJS.ProcessEnv): Record<string, unknown> {
  const wrennDir = env.WRENN_DIR || join(homedir(), ".wrenn");
  const raw: Record<string, unknown> = {
    host: env.WRENN_CP_HOST,
    port: envNumber(env.WRENN_CP_PORT),
    volumeSizeMiB: envNumber(env.WRENN_VOLUME_SIZE_MIB),
    volumeMaxSizeMiB: envNumber(env.WRENN_VOLUME_MAX_SIZE_MIB),
    maxVolumesPerTeam: envNumber(env.WRENN_VOLUMES_PER_TEAM),
    metricsSampleMs: envNumber(env.WRENN_METRICS_SAMPLE_MS),
    metricsSampleConcurrency: envNumber(env.WRENN_METRICS_SAMPLE_CONCURRENCY),
    metricsRetentionHours: envNumber(env.WRENN_METRICS_RETENTION_HOURS),
    databaseUrl: env.DATABASE_URL,
    pgliteDir: env.WRENN_CP_PGLITE_DIR || join(wrennDir, "cp", "pglite"),
    heartbeatIntervalMs: envNumber(env.WRENN_CP_HEARTBEAT_INTERVAL_MS),
    hostDeadlineMs: envNumber(env.WRENN_CP_HOST_DEADLINE_MS),
    reconcileIntervalMs: envNumber(env.WRENN_CP_RECONCILE_INTERVAL_MS),
    transitionDeadlineMs: envNumber(env.WRENN_CP_TRANSITION_DEADLINE_MS),
    orphanGraceMs: envNumber(env.WRENN_CP_ORPHAN_GRACE_MS),
    hostCredentialTtlSec: envNumber(env.WRENN_CP_HOST_CREDENTIAL_TTL_SEC),
    logLevel: env.WRENN_LOG_LEVEL,
    templateFilesDir: env.WRENN_CP_TEMPLATE_FILES_DIR || join(wrennDir, "cp", "template-files"),
    maxConcurrentBuilds: envNumber(env.WRENN_CP_MAX_BUILDS),
    leaseRenewIntervalMs: envNumber(env.WRENN_CP_LEASE_RENEW_MS),
    leaseTtlMs: envNumber(env.WRENN_CP_LEASE_TTL_MS),
    buildStepTimeoutSec: envNumber(env.WRENN_CP_BUILD_STEP_TIMEOUT_SEC),
    sandboxDomain: env.WRENN_SANDBOX_DOMAIN,
    tlsCertPath: env.WRENN_CP_TLS_CERT,
    tlsKeyPath: env.WRENN_CP_TLS_KEY,
    tlsPort: envNumber(env.WRENN_CP_TLS_PORT),
    sessionTtlSec: envNumber(env.WRENN_CP_SESSION_TTL_SEC),
    invitationTtlSec: envNumber(env.WRENN_CP_INVITATION_TTL_SEC),
    dashboardDir: env.WRENN_CP_DASHBOARD_DIR,
  };
  return definedEntries(raw);
}
