import { WrennError } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { TemplateBuildRow, TemplateRow } from "../db/schema.js";
import type { StartPoint } from "./sandbox-launch.js";

/** The tag a build gets when none is named, and the one `name` alone means (as in E2B). */
export const DEFAULT_TAG = "default";

/** Splits `name:tag`; no tag means the default tag. */
export function parseTemplateRef(ref: string): { name: string; tag: string | null } {
  const at = ref.indexOf(":");
  if (at < 0) return { name: ref, tag: null };
  return { name: ref.slice(0, at), tag: ref.slice(at + 1) || null };
}

/** Makes a build's snapshot on a host that lacks it; answers the snapshot's name there. */
export type Replicate = (build: TemplateBuildRow, hostId: string) => Promise<string>;

/** A team's template by name (its own, or a shared base). */
export async function findTemplate(db: Db, teamId: string, name: string): Promise<TemplateRow | undefined> {
  const rows = await db
    .selectFrom("templates")
    .selectAll()
    .where("name", "=", name)
    .where((eb) => eb.or([eb("team_id", "=", teamId), eb("team_id", "is", null)]))
    .execute();
  return rows.find((r) => r.team_id === teamId) ?? rows[0];
}

/** The build a built template's `tag` (or its current build) names. */
export async function buildOf(db: Db, template: TemplateRow, tag: string | null): Promise<TemplateBuildRow> {
  let buildId = template.build_id;
  if (tag !== null && tag !== DEFAULT_TAG) {
    const row = await db
      .selectFrom("template_tags")
      .select("build_id")
      .where("template_id", "=", template.id)
      .where("tag", "=", tag)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `template ${template.name} has no tag "${tag}"`);
    buildId = row.build_id;
  }
  if (!buildId) {
    const latest = await db
      .selectFrom("template_builds")
      .select(["status", "error_message"])
      .where("template_id", "=", template.id)
      .orderBy("created_at", "desc")
      .executeTakeFirst();
    const why = latest
      ? latest.status === "error"
        ? `its last build failed: ${latest.error_message ?? "unknown error"}`
        : `its first build is ${latest.status}`
      : "it has never been built";
    throw new WrennError("failed_precondition", `template ${template.name} has no ready build (${why})`);
  }
  const build = await db
    .selectFrom("template_builds")
    .selectAll()
    .where("id", "=", buildId)
    .executeTakeFirst();
  if (!build) throw new WrennError("not_found", `template ${template.name}'s build ${buildId} is gone`);
  return build;
}

/** Where a build's snapshot is: host id → snapshot name, on hosts that are up. */
export async function buildHosts(db: Db, buildId: string): Promise<Map<string, string>> {
  const rows = await db
    .selectFrom("template_build_hosts")
    .innerJoin("hosts", "hosts.id", "template_build_hosts.host_id")
    .select(["template_build_hosts.host_id", "template_build_hosts.agent_name"])
    .where("template_build_hosts.build_id", "=", buildId)
    .where("hosts.state", "=", "up")
    .execute();
  return new Map(rows.map((r) => [r.host_id, r.agent_name]));
}

/**
 * What a create names resolves to: an image (any host offering it), a snapshot template (its
 * host), or a built template's build (the hosts holding it; others build it when given
 * `replicate`).
 */
export async function resolveStartPoint(
  db: Db,
  teamId: string,
  ref: string,
  replicate?: Replicate,
): Promise<StartPoint> {
  const { name, tag } = parseTemplateRef(ref);
  const template = await findTemplate(db, teamId, name);
  // Images and snapshot templates have one version: whatever tag a caller names is that one.
  if (!template || template.kind === "base") {
    // An image by name; the scheduler checks a host offers it.
    return { templateId: null, image: name };
  }
  if (template.kind === "snapshot") {
    return {
      templateId: template.id,
      image: template.image ?? "base",
      sized: template,
      snapshotOn: new Map(template.host_id ? [[template.host_id, template.agent_name ?? ""]] : []),
      networkPolicy: template.network_policy,
    };
  }
  const build = await buildOf(db, template, tag);
  return {
    templateId: template.id,
    image: template.image ?? "base",
    sized: { ...template, vcpus: build.vcpus, memory_mib: build.memory_mib, disk_mib: build.disk_mib },
    snapshotOn: await buildHosts(db, build.id),
    ...(replicate ? { replicate: (hostId: string) => replicate(build, hostId) } : {}),
    env: build.env,
    templateBuildId: build.id,
    defaultUser: build.default_user,
    defaultWorkdir: build.default_workdir,
  };
}
