import { type BuildSpec, BuildSpecSchema } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import { endpointOf } from "../services/host-endpoint.js";
import type { ServiceDeps } from "../services/service-deps.js";
import type { TemplateFiles } from "./template-files.js";

const UNSTARTED_BUILD_TTL_MS = 3600_000;

/**
 * Garbage collection of what builds leave: a build's snapshots once no template or tag names
 * it (and it is not its template's newest build), step-cache snapshots no such build passes
 * through, and copy-step archives no such build copies. Agents keep a deleted snapshot's files
 * while a sandbox still runs from it, so sandboxes outlive their template.
 */
export class TemplateGc {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly files: TemplateFiles,
  ) {}

  /** Builds something still needs. */
  private async liveBuilds() {
    const { db } = this.deps;
    const builds = await db
      .selectFrom("template_builds")
      .select(["id", "template_id", "team_id", "status", "spec", "step_keys", "created_at", "started_at"])
      .execute();
    const named = new Set<string>();
    for (const t of await db
      .selectFrom("templates")
      .select("build_id")
      .where("build_id", "is not", null)
      .execute()) {
      if (t.build_id) named.add(t.build_id);
    }
    for (const t of await db.selectFrom("template_tags").select("build_id").execute()) named.add(t.build_id);
    const newest = new Map<string, (typeof builds)[number]>();
    for (const b of builds) {
      const seen = newest.get(b.template_id);
      if (!seen || seen.created_at < b.created_at) newest.set(b.template_id, b);
    }
    const live = builds.filter(
      (b) =>
        named.has(b.id) ||
        newest.get(b.template_id)?.id === b.id ||
        b.status === "waiting" ||
        b.status === "building",
    );
    return live;
  }

  /**
   * Builds requested but never started (a client that went away between E2B's two calls) go
   * after an hour, and their template with them when it has no other build.
   */
  private async expireUnstarted(): Promise<void> {
    const { db } = this.deps;
    const cutoff = new Date(this.deps.now().getTime() - UNSTARTED_BUILD_TTL_MS);
    const stale = await db
      .deleteFrom("template_builds")
      .where("status", "=", "waiting")
      .where("spec", "is", null)
      .where("created_at", "<", cutoff)
      .returning("template_id")
      .execute();
    for (const { template_id } of stale) {
      const other = await db
        .selectFrom("template_builds")
        .select("id")
        .where("template_id", "=", template_id)
        .executeTakeFirst();
      if (!other)
        await db.deleteFrom("templates").where("id", "=", template_id).where("kind", "=", "built").execute();
    }
  }

  async collect(): Promise<{ snapshots: number; caches: number; files: number }> {
    const { db } = this.deps;
    await this.expireUnstarted();
    const live = await this.liveBuilds();
    const liveIds = new Set(live.map((b) => b.id));
    const liveKeys = new Set(live.flatMap((b) => b.step_keys));
    let snapshots = 0;
    let caches = 0;
    const placed = await db.selectFrom("template_build_hosts").selectAll().execute();
    for (const row of placed) {
      if (liveIds.has(row.build_id)) continue;
      if (await this.deleteOnHost(row.host_id, row.agent_name)) {
        await db
          .deleteFrom("template_build_hosts")
          .where("build_id", "=", row.build_id)
          .where("host_id", "=", row.host_id)
          .execute();
        snapshots++;
      }
    }
    // A running build records its step keys only when it is ready: the cache entries it has
    // made or reused so far are kept (any touched since the oldest running build started).
    const runningSince = live
      .filter((b) => b.status === "building" && b.started_at)
      .map((b) => new Date(b.started_at as Date).getTime())
      .reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
    const touchedLately = (row: { created_at: Date; used_at: Date }) =>
      new Date(row.created_at).getTime() >= runningSince || new Date(row.used_at).getTime() >= runningSince;
    for (const row of await db.selectFrom("template_step_cache").selectAll().execute()) {
      if (liveKeys.has(row.key) || touchedLately(row)) continue;
      if (await this.deleteOnHost(row.host_id, row.agent_name)) {
        await db
          .deleteFrom("template_step_cache")
          .where("host_id", "=", row.host_id)
          .where("key", "=", row.key)
          .execute();
        caches++;
      }
    }
    const hashesByTeam = new Map<string, Set<string>>();
    for (const b of live) {
      const set = hashesByTeam.get(b.team_id) ?? new Set<string>();
      for (const step of parseSteps(b.spec)) if (step.type === "copy") set.add(step.files_hash);
      hashesByTeam.set(b.team_id, set);
    }
    let files = 0;
    const teams = await db.selectFrom("template_files").select("team_id").distinct().execute();
    for (const { team_id } of teams) {
      files += await this.files.collect(team_id, hashesByTeam.get(team_id) ?? new Set());
    }
    return { snapshots, caches, files };
  }

  /** Deletes a snapshot on its host; false when the host cannot be asked now (tried again later). */
  private async deleteOnHost(hostId: string, name: string): Promise<boolean> {
    const host = await this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where("id", "=", hostId)
      .executeTakeFirst();
    if (!host) return true;
    if (host.state !== "up") return false;
    try {
      await this.deps.hosts.call(endpointOf(host), (c) => c.deleteSnapshot({ name, force: true }));
      return true;
    } catch (err) {
      if (WrennError.from(err).code === "not_found") return true;
      this.deps.logger.warn("template snapshot not deleted", {
        host: hostId,
        name,
        error: WrennError.from(err).message,
      });
      return false;
    }
  }
}

function parseSteps(spec: unknown): BuildSpec["steps"] {
  const parsed = BuildSpecSchema.safeParse(spec);
  return parsed.success ? parsed.data.steps : [];
}
