import type { Readable } from "node:stream";
import { type BuildLogEntryView, type BuildSpec, BuildSpecSchema, type BuildView } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import type { TemplateBuildRow, TemplateRow } from "../db/schema.js";
import { newBuildId, newTemplateId } from "../ids.js";
import { endpointOf } from "../services/host-endpoint.js";
import type { ServiceDeps } from "../services/service-deps.js";
import { buildOf, DEFAULT_TAG } from "../services/start-points.js";
import { readBuildLog } from "./build-log.js";
import type { TemplateBuilds } from "./template-builds.js";
import type { TemplateFiles } from "./template-files.js";
import type { TemplateGc } from "./template-gc.js";

export interface NewBuildInput {
  /** The template's name (created on its first build). */
  name: string;
  /** Tags the build gets; empty means the default tag. */
  tags: string[];
  vcpus?: number | undefined;
  memoryMiB?: number | undefined;
  diskMiB?: number | undefined;
}

/** A built template's newest build status and its tags, for listings. */
export interface TemplateSummary {
  row: TemplateRow;
  buildStatus: BuildView["status"] | null;
  tags: string[];
}

/**
 * Templates as users see them: the hosts' images, snapshot templates and built templates;
 * builds (requested, started, their status and logs), copy-step archives, and deletion.
 */
export class TemplatesService {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly builds: TemplateBuilds,
    readonly files: TemplateFiles,
    private readonly gc: TemplateGc,
  ) {}

  async list(principal: Principal): Promise<TemplateSummary[]> {
    const { db } = this.deps;
    const rows = await db
      .selectFrom("templates")
      .selectAll()
      .where((eb) => eb.or([eb("team_id", "is", null), eb("team_id", "=", principal.teamId)]))
      .orderBy("kind")
      .orderBy("name")
      .execute();
    return Promise.all(rows.map((row) => this.summary(row)));
  }

  async summary(row: TemplateRow): Promise<TemplateSummary> {
    if (row.kind !== "built") return { row, buildStatus: null, tags: [] };
    const { db } = this.deps;
    const latest = await db
      .selectFrom("template_builds")
      .select("status")
      .where("template_id", "=", row.id)
      .orderBy("created_at", "desc")
      .executeTakeFirst();
    const tags = await db
      .selectFrom("template_tags")
      .select("tag")
      .where("template_id", "=", row.id)
      .orderBy("tag")
      .execute();
    return {
      row,
      buildStatus: latest?.status ?? null,
      tags: [...(row.build_id ? ["default"] : []), ...tags.map((t) => t.tag)],
    };
  }

  /** A template of the team by id or name (built and snapshot ones; not the shared images). */
  async get(principal: Principal, idOrName: string): Promise<TemplateRow> {
    const row = await this.deps.db
      .selectFrom("templates")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `template ${idOrName} not found`);
    return row;
  }

  /**
   * A new build of template `name` (made now if new), waiting for its steps. A name taken by
   * a snapshot template is refused; a built template gets a new build.
   */
  async requestBuild(
    principal: Principal,
    input: NewBuildInput,
  ): Promise<{ template: TemplateRow; build: TemplateBuildRow }> {
    const { db, config } = this.deps;
    return db.transaction().execute(async (tx) => {
      let template = await tx
        .selectFrom("templates")
        .selectAll()
        .where("team_id", "=", principal.teamId)
        .where("name", "=", input.name)
        .forUpdate()
        .executeTakeFirst();
      if (template && template.kind !== "built") {
        throw new WrennError(
          "already_exists",
          `${input.name} is a ${template.kind} template; builds need another name`,
        );
      }
      template ??= await tx
        .insertInto("templates")
        .values({
          id: newTemplateId(),
          team_id: principal.teamId,
          name: input.name,
          kind: "built",
          host_id: null,
          agent_name: null,
          source_sandbox_id: null,
          image: null,
          vcpus: null,
          memory_mib: null,
          disk_mib: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      const build = await tx
        .insertInto("template_builds")
        .values({
          id: newBuildId(),
          template_id: template.id,
          team_id: principal.teamId,
          status: "waiting",
          spec: null,
          tags: JSON.stringify(input.tags),
          vcpus: input.vcpus ?? config.defaultVcpus,
          memory_mib: input.memoryMiB ?? config.defaultMemoryMiB,
          disk_mib: input.diskMiB ?? config.defaultDiskMiB,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return { template, build };
    });
  }

  /**
   * Starts a requested build with its steps. Everything is checked first (the base, the
   * copy steps' archives, the sizes a template parent fixes), so a refused start changes
   * nothing and can be sent again.
   */
  async startBuild(principal: Principal, buildId: string, input: unknown): Promise<TemplateBuildRow> {
    const spec: BuildSpec = BuildSpecSchema.parse(input);
    const build = await this.build(principal, buildId);
    if (build.status !== "waiting" || build.spec !== null) {
      throw new WrennError("conflict", `build ${buildId} was already started`);
    }
    const missing = await this.files.missing(
      principal.teamId,
      spec.steps.flatMap((s) => (s.type === "copy" ? [s.files_hash] : [])),
    );
    if (missing.length > 0) {
      throw new WrennError("invalid_argument", `copy steps' files were not uploaded: ${missing.join(", ")}`);
    }
    const parent = await this.builds.parentOf(principal.teamId, spec, {
      vcpus: build.vcpus,
      memoryMiB: build.memory_mib,
    });
    const sized = parent.start.sized;
    const sizes = sized
      ? { vcpus: sized.vcpus ?? build.vcpus, memory_mib: sized.memory_mib ?? build.memory_mib }
      : {};
    const started = await this.deps.db
      .updateTable("template_builds")
      .set({ spec: JSON.stringify(spec), ...sizes })
      .where("id", "=", buildId)
      .where("spec", "is", null)
      .returningAll()
      .executeTakeFirst();
    if (!started) throw new WrennError("conflict", `build ${buildId} was already started`);
    this.builds.enqueue(buildId);
    return started;
  }

  /**
   * Requests and starts a build in one call (the /v1 API). A refused start leaves nothing:
   * the build goes, and the template too if this was its first.
   */
  async buildNow(principal: Principal, input: NewBuildInput, spec: unknown) {
    const { template, build } = await this.requestBuild(principal, input);
    try {
      return { template, build: await this.startBuild(principal, build.id, spec) };
    } catch (err) {
      await this.deps.db.deleteFrom("template_builds").where("id", "=", build.id).execute();
      const others = await this.deps.db
        .selectFrom("template_builds")
        .select("id")
        .where("template_id", "=", template.id)
        .executeTakeFirst();
      if (!others) await this.deps.db.deleteFrom("templates").where("id", "=", template.id).execute();
      throw err;
    }
  }

  /** The builds of one template, newest first. */
  async buildsOf(principal: Principal, idOrName: string): Promise<TemplateBuildRow[]> {
    const template = await this.get(principal, idOrName);
    return this.deps.db
      .selectFrom("template_builds")
      .selectAll()
      .where("template_id", "=", template.id)
      .orderBy("created_at", "desc")
      .execute();
  }

  /** A build of one of the team's templates. */
  async build(principal: Principal, buildId: string): Promise<TemplateBuildRow> {
    const row = await this.deps.db
      .selectFrom("template_builds")
      .selectAll()
      .where("id", "=", buildId)
      .where("team_id", "=", principal.teamId)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `build ${buildId} not found`);
    return row;
  }

  async logs(
    principal: Principal,
    buildId: string,
    offset: number,
    limit: number,
  ): Promise<{ build: TemplateBuildRow; entries: BuildLogEntryView[] }> {
    const build = await this.build(principal, buildId);
    // Read after the status: entries of a finished build are complete by then.
    const entries = await readBuildLog(this.deps.db, buildId, offset, limit);
    return { build, entries };
  }

  /** A team template's tags and the builds they name ("default" is its current build). */
  async tagsOf(
    principal: Principal,
    idOrName: string,
  ): Promise<{ tag: string; buildId: string; createdAt: Date }[]> {
    const template = await this.get(principal, idOrName);
    const rows = await this.deps.db
      .selectFrom("template_tags")
      .selectAll()
      .where("template_id", "=", template.id)
      .orderBy("tag")
      .execute();
    const tags = rows.map((r) => ({ tag: r.tag, buildId: r.build_id, createdAt: new Date(r.created_at) }));
    return template.build_id
      ? [{ tag: DEFAULT_TAG, buildId: template.build_id, createdAt: new Date(template.created_at) }, ...tags]
      : tags;
  }

  /** Points `tags` at the build `name:tag` names now; answers that build's id. */
  async assignTags(principal: Principal, name: string, tag: string | null, tags: string[]): Promise<string> {
    const template = await this.get(principal, name);
    if (template.kind !== "built")
      throw new WrennError("invalid_argument", `${name} is not a built template`);
    const build = await buildOf(this.deps.db, template, tag);
    for (const t of tags) {
      if (t === DEFAULT_TAG) {
        await this.deps.db
          .updateTable("templates")
          .set({ build_id: build.id })
          .where("id", "=", template.id)
          .execute();
        continue;
      }
      await this.deps.db
        .insertInto("template_tags")
        .values({ template_id: template.id, tag: t, build_id: build.id })
        .onConflict((oc) => oc.columns(["template_id", "tag"]).doUpdateSet({ build_id: build.id }))
        .execute();
    }
    return build.id;
  }

  async removeTags(principal: Principal, name: string, tags: string[]): Promise<void> {
    const template = await this.get(principal, name);
    for (const t of tags) {
      if (t === DEFAULT_TAG) {
        await this.deps.db
          .updateTable("templates")
          .set({ build_id: null })
          .where("id", "=", template.id)
          .execute();
      } else {
        await this.deps.db
          .deleteFrom("template_tags")
          .where("template_id", "=", template.id)
          .where("tag", "=", t)
          .execute();
      }
    }
    await this.gc.collect().catch((err: unknown) => this.deps.logger.warn("template gc failed", { err }));
  }

  async putFile(
    principal: Principal,
    hash: string,
    body: Readable,
    verify: boolean,
  ): Promise<{ size: number }> {
    return this.files.put(principal.teamId, hash, body, verify);
  }

  /**
   * Deletes a built template: its builds' snapshots go (sandboxes running from them keep
   * running: agents keep the files they read), then unused step caches and archives.
   */
  async delete(principal: Principal, idOrName: string): Promise<void> {
    const template = await this.get(principal, idOrName);
    if (template.kind !== "built") {
      throw new WrennError(
        "invalid_argument",
        `${template.name} is a ${template.kind} template; delete it as a snapshot`,
      );
    }
    const { db, audit, events } = this.deps;
    await audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "template.delete",
        resourceType: "template",
        resourceId: template.id,
        details: { name: template.name },
      },
      async () => {
        const busy = await db
          .selectFrom("template_builds")
          .select("id")
          .where("template_id", "=", template.id)
          .where("status", "=", "building")
          .executeTakeFirst();
        if (busy)
          throw new WrennError(
            "conflict",
            `template ${template.name} is being built (${busy.id}); delete it when the build ends`,
          );
        const placed = await db
          .selectFrom("template_build_hosts")
          .innerJoin("template_builds", "template_builds.id", "template_build_hosts.build_id")
          .innerJoin("hosts", "hosts.id", "template_build_hosts.host_id")
          .selectAll("hosts")
          .select("template_build_hosts.agent_name")
          .where("template_builds.template_id", "=", template.id)
          .execute();
        for (const host of placed) {
          if (host.state !== "up") continue;
          await this.deps.hosts
            .call(endpointOf(host), (c) => c.deleteSnapshot({ name: host.agent_name, force: true }))
            .catch((err: unknown) => {
              if (WrennError.from(err).code !== "not_found") throw err;
            });
        }
        await db.deleteFrom("templates").where("id", "=", template.id).execute();
        events.publish("template.deleted", principal.teamId, {
          template_id: template.id,
          name: template.name,
        });
      },
    );
    await this.gc.collect().catch((err: unknown) => this.deps.logger.warn("template gc failed", { err }));
  }
}
