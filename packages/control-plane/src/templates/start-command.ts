import { type BuildSpec, BuildSpecSchema } from "@wrenn/api";
import type { GuestClient } from "@wrenn/guest-client";
import type { Logger } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { SandboxRow } from "../db/schema.js";
import { buildOf, findTemplate, parseTemplateRef } from "../services/start-points.js";
import { contexts, cwdOf } from "./build-context.js";
import { check } from "./guest-commands.js";

/** How long the start command gets when its template has no ready check (as in the build). */
export const NO_READY_CHECK_WAIT_MS = 2000;
/** Between two runs of the ready check. */
const READY_POLL_MS = 1000;
/** Templates layered deeper than this are not followed (a guard against a cycle of names). */
const MAX_LAYERS = 8;

/**
 * The build specs whose start commands a sandbox of `buildId` had running in its memory, the
 * deepest parent first: its own build's, and those of the built templates it is layered on
 * (as they are built now: the parent's current build for the tag the child named).
 */
async function startCommandSpecs(db: Db, buildId: string): Promise<BuildSpec[]> {
  const specs: BuildSpec[] = [];
  let next: string | undefined = buildId;
  for (let depth = 0; next && depth < MAX_LAYERS; depth++) {
    const build = await db
      .selectFrom("template_builds")
      .select(["spec", "team_id"])
      .where("id", "=", next)
      .executeTakeFirst();
    const parsed = BuildSpecSchema.safeParse(build?.spec);
    if (!build || !parsed.success) break;
    const spec = parsed.data;
    if (spec.start_cmd) specs.unshift(spec);
    next = undefined;
    if ("template" in spec.from) {
      const { name, tag } = parseTemplateRef(spec.from.template);
      const parent = await findTemplate(db, build.team_id, name);
      if (parent?.kind === "built") next = (await buildOf(db, parent, tag).catch(() => undefined))?.id;
    }
  }
  return specs;
}

/**
 * Starts a built template's start command again in a sandbox whose VM booted from its disk
 * (a resume after a pause without memory, or a reboot): the process the template's memory
 * snapshot held is gone (for a layered template, those of its parents too, parents first).
 * Each runs as its build ran it (that build's final user, workdir and env, in the
 * background), and this resolves once each ready check passes or its build's ready timeout is
 * over, so a caller that gets the sandbox back can reach what it serves. A ready check that
 * never passes is logged, not thrown: the sandbox runs either way, as with a start command
 * that crashed.
 */
export async function restartStartCommand(
  deps: { db: Db; logger: Logger },
  row: Pick<SandboxRow, "id" | "template_build_id">,
  guest: GuestClient,
): Promise<void> {
  if (!row.template_build_id) return;
  const log = deps.logger.child({ sandbox: row.id, build: row.template_build_id });
  for (const spec of await startCommandSpecs(deps.db, row.template_build_id)) {
    const ctx = contexts(spec.steps).final;
    const launch = (command: string) => ({ command, envs: ctx.env, cwd: cwdOf(ctx), user: ctx.user });
    const pid = await guest.startBackground(launch(spec.start_cmd as string), "start_cmd");
    log.info("template start command started again after a reboot", { pid, startCmd: spec.start_cmd });
    if (!spec.ready_cmd) {
      await new Promise((r) => setTimeout(r, NO_READY_CHECK_WAIT_MS));
      continue;
    }
    const deadline = Date.now() + spec.ready_timeout_sec * 1000;
    while (!(await check(guest, launch(spec.ready_cmd), 10_000))) {
      if (Date.now() > deadline) {
        log.warn("template ready check did not pass after a reboot", {
          readyCmd: spec.ready_cmd,
          timeoutSec: spec.ready_timeout_sec,
        });
        break;
      }
      await new Promise((r) => setTimeout(r, READY_POLL_MS));
    }
  }
}
