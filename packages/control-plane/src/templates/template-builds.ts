import { type BuildSpec, BuildSpecSchema } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import { Leases } from "../coordination/leases.js";
import type { TemplateBuildRow } from "../db/schema.js";
import type { SandboxesService } from "../services/sandboxes-service.js";
import type { ServiceDeps } from "../services/service-deps.js";
import { DEFAULT_TAG, findTemplate, parseTemplateRef, resolveStartPoint } from "../services/start-points.js";
import { BuildLog, type StepLog } from "./build-log.js";
import { BuildQueue } from "./build-queue.js";
import { type BuildParent, BuildRunner, buildPrincipal } from "./build-runner.js";
import { BuildFailure } from "./build-step-error.js";
import { restartStartCommand } from "./start-command.js";
import type { TemplateFiles } from "./template-files.js";
import type { TemplateGc } from "./template-gc.js";

/**
 * Runs template builds: queues them, finds their parent, runs them (BuildRunner), records the
 * outcome and the tags, and builds an existing build again on another host when a sandbox
 * must start there (replication by rebuilding from the same steps and cached archives).
 */
export class TemplateBuilds {
  private readonly runner: BuildRunner;
  private readonly queue: BuildQueue;
  /** Replications in flight here, one per build and host however many creates wait. */
  private readonly replicas = new Map<string, Promise<string>>();
  /** Replications across replicas: one lease per build and host (leases named `replicate:…`). */
  private readonly replicationLeases: Leases;
  /** Whether this replica may collect garbage now (it holds the template-gc lease). */
  private gcAllowed: () => boolean = () => true;

  constructor(
    private readonly deps: ServiceDeps,
    private readonly sandboxes: SandboxesService,
    files: TemplateFiles,
    private readonly gc: TemplateGc,
  ) {
    this.runner = new BuildRunner(deps, sandboxes, files);
    this.replicationLeases = new Leases(deps.db, deps.replica.id);
    this.queue = new BuildQueue(deps.config.maxConcurrentBuilds, (id) => this.runBuild(id), deps.logger);
    sandboxes.useReplication((build, hostId) => this.replicate(build, hostId));
    sandboxes.useAfterReboot((row, guest) => restartStartCommand(deps, row, guest));
  }

  /** Collects after a build only when `allowed` says so, so one replica at a time collects. */
  gateGc(allowed: () => boolean): void {
    this.gcAllowed = allowed;
  }

  enqueue(buildId: string): void {
    this.queue.enqueue(buildId);
  }

  /**
   * Fails the builds whose replica is dead (its row gone or stale): their VMs went with it.
   * Builds another live replica runs are left alone. Run by one replica (the build-recovery lease).
   */
  async recoverOrphans(): Promise<number> {
    const { db, replica } = this.deps;
    const interrupted = await db
      .updateTable("template_builds")
      .set({
        status: "error",
        error_message: "the build was interrupted (the control plane running it stopped)",
        finished_at: this.deps.now(),
      })
      .where("status", "=", "building")
      .where((eb) => eb.or([eb("claimed_by", "is", null), eb.not(replica.liveCondition("claimed_by"))]))
      .returning(["id", "team_id", "sandbox_id"])
      .execute();
    for (const b of interrupted) {
      this.deps.logger.warn("template build orphaned by a dead replica failed", { build: b.id });
      if (b.sandbox_id) {
        await this.sandboxes.destroy(buildPrincipal(b.team_id), b.sandbox_id).catch(() => undefined);
      }
    }
    return interrupted.length;
  }

  /** Queues waiting builds here, whichever replica accepted them (the one that did may be gone). */
  async claimWaiting(): Promise<void> {
    const queued = await this.deps.db
      .selectFrom("template_builds")
      .select("id")
      .where("status", "=", "waiting")
      .where("spec", "is not", null)
      .orderBy("created_at")
      .limit(this.deps.config.maxConcurrentBuilds)
      .execute();
    for (const { id } of queued) this.enqueue(id);
  }

  stop(): Promise<void> {
    return this.queue.stop();
  }

  idle(): Promise<void> {
    return this.queue.idle();
  }

  /** What a build starts from; a template parent fixes the sizes (checked when the build is made). */
  async parentOf(
    teamId: string,
    spec: BuildSpec,
    sizes: { vcpus: number; memoryMiB: number },
  ): Promise<BuildParent> {
    if ("image" in spec.from) {
      const image = spec.from.image;
      const hosts = await this.deps.db
        .selectFrom("hosts")
        .select("images")
        .where("state", "=", "up")
        .execute();
      const offered = new Set(hosts.flatMap((h) => h.images));
      if (!offered.has(image)) {
        throw new WrennError(
          "invalid_argument",
          `base image "${image}" is not on any host (images: ${[...offered].join(", ") || "none"}); a build starts from one of them or from a template`,
        );
      }
      return { start: { templateId: null, image }, identity: { image, ...sizes } };
    }
    const ref = spec.from.template;
    const start = await resolveStartPoint(this.deps.db, teamId, ref, (b, h) => this.replicate(b, h));
    if (!start.templateId) throw new WrennError("not_found", `template ${ref} not found`);
    const { name, tag } = parseTemplateRef(ref);
    const template = await findTemplate(this.deps.db, teamId, name);
    const identity =
      template?.kind === "built"
        ? { templateBuildId: await this.buildIdOf(template.id, template.build_id, tag) }
        : { templateBuildId: `snapshot:${start.templateId}` };
    return { start, identity };
  }

  private async buildIdOf(templateId: string, current: string | null, tag: string | null): Promise<string> {
    if (tag === null || tag === DEFAULT_TAG) return current ?? "";
    const row = await this.deps.db
      .selectFrom("template_tags")
      .select("build_id")
      .where("template_id", "=", templateId)
      .where("tag", "=", tag)
      .executeTakeFirst();
    return row?.build_id ?? "";
  }

  private async runBuild(buildId: string): Promise<void> {
    const { db, now, events, logger } = this.deps;
    const claimed = await this.claim(buildId);
    if (!claimed) return;
    const log = await BuildLog.open(db, buildId, now);
    const started = Date.now();
    try {
      const spec = BuildSpecSchema.parse(claimed.spec);
      await log.info(
        "base",
        `building from ${"image" in spec.from ? `image ${spec.from.image}` : `template ${spec.from.template}`}`,
      );
      const parent = await this.parentOf(claimed.team_id, spec, {
        vcpus: claimed.vcpus,
        memoryMiB: claimed.memory_mib,
      });
      const outcome = await this.runner.run(claimed, parent, log);
      // The last entry is in before the status says ready: E2B's SDK stops reading at a terminal status.
      await log.info(
        "",
        `build ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${outcome.stepsCached} steps from the cache)`,
      );
      await log.flush();
      await db.transaction().execute(async (tx) => {
        await tx
          .updateTable("template_builds")
          .set({
            status: "ready",
            finished_at: now(),
            step_keys: JSON.stringify(outcome.stepKeys),
            steps_cached: outcome.stepsCached,
            env: JSON.stringify(outcome.context.env),
            default_user: outcome.context.user,
            default_workdir: outcome.context.workdir ?? `/home/${outcome.context.user}`,
          })
          .where("id", "=", buildId)
          .execute();
        const tags = claimed.tags.length > 0 ? claimed.tags : [DEFAULT_TAG];
        for (const tag of tags) {
          if (tag === DEFAULT_TAG) {
            await tx
              .updateTable("templates")
              .set({
                build_id: buildId,
                vcpus: claimed.vcpus,
                memory_mib: claimed.memory_mib,
                disk_mib: claimed.disk_mib,
                image: parent.start.image,
              })
              .where("id", "=", claimed.template_id)
              .execute();
          } else {
            await tx
              .insertInto("template_tags")
              .values({ template_id: claimed.template_id, tag, build_id: buildId })
              .onConflict((oc) => oc.columns(["template_id", "tag"]).doUpdateSet({ build_id: buildId }))
              .execute();
          }
        }
        // A template first built under a tag only still needs its image for placement.
        await tx
          .updateTable("templates")
          .set({ image: parent.start.image })
          .where("id", "=", claimed.template_id)
          .where("image", "is", null)
          .execute();
      });
      events.publish("template.built", claimed.team_id, {
        template_id: claimed.template_id,
        build_id: buildId,
      });
    } catch (err) {
      const error = WrennError.from(err);
      const step = err instanceof BuildFailure ? err.step : null;
      await log.error(step ?? "", error.message);
      await log.flush();
      await db
        .updateTable("template_builds")
        .set({ status: "error", error_message: error.message, error_step: step, finished_at: now() })
        .where("id", "=", buildId)
        .execute();
      events.publish("template.build_failed", claimed.team_id, {
        template_id: claimed.template_id,
        build_id: buildId,
        error: error.message,
      });
      logger.info("template build failed", { build: buildId, error: error.message });
    }
    await log.flush();
    if (this.gcAllowed())
      await this.gc.collect().catch((err: unknown) => logger.warn("template gc failed", { err }));
  }

  /**
   * Takes a waiting build for this replica unless maxConcurrentBuilds run already, counted
   * over every replica under one advisory lock. A build left waiting is taken later by a
   * replica's build-claimer worker.
   */
  private async claim(buildId: string): Promise<TemplateBuildRow | undefined> {
    const { db, now, config, replica } = this.deps;
    return db.transaction().execute(async (tx) => {
      await sql`SELECT pg_advisory_xact_lock(7347002)`.execute(tx);
      const { n } = await tx
        .selectFrom("template_builds")
        .select((eb) => eb.fn.countAll<string>().as("n"))
        .where("status", "=", "building")
        .executeTakeFirstOrThrow();
      if (Number(n) >= config.maxConcurrentBuilds) return undefined;
      return tx
        .updateTable("template_builds")
        .set({ status: "building", started_at: now(), claimed_by: replica.id })
        .where("id", "=", buildId)
        .where("status", "=", "waiting")
        .returningAll()
        .executeTakeFirst();
    });
  }

  /**
   * Makes `build`'s snapshot on `hostId` by running its steps there (cached steps reused).
   * One replication per build and host: callers on this replica join the one in flight, and
   * across replicas the one holding the `replicate:<build>@<host>` lease runs it while the
   * others wait for its `template_build_hosts` row (or take over once its lease lapses).
   */
  replicate(build: TemplateBuildRow, hostId: string): Promise<string> {
    const key = `${build.id}@${hostId}`;
    let running = this.replicas.get(key);
    if (!running) {
      running = this.replicateOnce(build, hostId).finally(() => this.replicas.delete(key));
      this.replicas.set(key, running);
    }
    return running;
  }

  /** The agent name of `buildId`'s snapshot on `hostId`, once some replica has made it. */
  private async placed(buildId: string, hostId: string): Promise<string | undefined> {
    const row = await this.deps.db
      .selectFrom("template_build_hosts")
      .select("agent_name")
      .where("build_id", "=", buildId)
      .where("host_id", "=", hostId)
      .executeTakeFirst();
    return row?.agent_name;
  }

  private async replicateOnce(build: TemplateBuildRow, hostId: string): Promise<string> {
    const lease = `replicate:${build.id}@${hostId}`;
    const ttlMs = this.deps.config.leaseTtlMs;
    const deadline = Date.now() + this.deps.config.transitionDeadlineMs;
    for (;;) {
      const done = await this.placed(build.id, hostId);
      if (done) return done;
      if (await this.replicationLeases.acquire(lease, ttlMs)) break;
      if (Date.now() > deadline) {
        throw new WrennError(
          "unavailable",
          `template build ${build.id} is being copied to its host elsewhere; try again`,
        );
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, ttlMs / 2)));
    }
    const renew = setInterval(
      () =>
        void this.replicationLeases.acquire(lease, ttlMs).then(
          // Another replica took it (this one stalled past the TTL): both may copy now; the
          // later one's template_build_hosts row wins.
          (held) =>
            held || this.deps.logger.warn("replication lease lost", { build: build.id, host: hostId }),
          (err: unknown) =>
            this.deps.logger.warn("replication lease renewal failed", { build: build.id, err }),
        ),
      this.deps.config.leaseRenewIntervalMs,
    );
    try {
      // Made by another replica between the check and the lease.
      return (await this.placed(build.id, hostId)) ?? (await this.rebuildOn(build, hostId));
    } finally {
      clearInterval(renew);
      await this.replicationLeases.release([lease]).catch(() => undefined);
    }
  }

  private async rebuildOn(build: TemplateBuildRow, hostId: string): Promise<string> {
    const log: StepLog = {
      info: async (step, message) =>
        this.deps.logger.debug("replica build", { build: build.id, step, message }),
      error: async (step, message) =>
        this.deps.logger.warn("replica build", { build: build.id, step, message }),
    };
    const spec = BuildSpecSchema.parse(build.spec);
    const parent = await this.parentOf(build.team_id, spec, {
      vcpus: build.vcpus,
      memoryMiB: build.memory_mib,
    });
    this.deps.logger.info("building a template on another host", { build: build.id, host: hostId });
    const outcome = await this.runner.run(build, parent, log, { onlyHostId: hostId });
    return outcome.agentName;
  }
}
