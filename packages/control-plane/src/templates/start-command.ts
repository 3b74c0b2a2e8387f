import { BuildSpecSchema } from "@wrenn/api";
import type { GuestClient } from "@wrenn/guest-client";
import type { Logger } from "@wrenn/shared";
import type { Db } from "../db/database.js";
import type { SandboxRow } from "../db/schema.js";
import { contexts, cwdOf } from "./build-context.js";
import { check } from "./guest-commands.js";

/** How long the start command gets when its template has no ready check (as in the build). */
export const NO_READY_CHECK_WAIT_MS = 2000;
/** Between two runs of the ready check. */
const READY_POLL_MS = 1000;

/**
 * Starts a built template's start command again in a sandbox whose VM booted from its disk
 * (a resume after a pause without memory, or a reboot): the process the template's memory
 * snapshot held is gone. It runs as the build ran it (the build's final user, workdir and env,
 * in the background), and this resolves once the ready check passes or the build's ready
 * timeout is over, so a caller that gets the sandbox back can reach what it serves. A ready
 * check that never passes is logged, not thrown: the sandbox runs either way, as it would
 * with a start command that crashed.
 */
export async function restartStartCommand(
  deps: { db: Db; logger: Logger },
  row: Pick<SandboxRow, "id" | "template_build_id">,
  guest: GuestClient,
): Promise<void> {
  if (!row.template_build_id) return;
  const build = await deps.db
    .selectFrom("template_builds")
    .select(["spec"])
    .where("id", "=", row.template_build_id)
    .executeTakeFirst();
  const parsed = BuildSpecSchema.safeParse(build?.spec);
  if (!parsed.success || !parsed.data.start_cmd) return;
  const spec = parsed.data;
  const ctx = contexts(spec.steps).final;
  const launch = (command: string) => ({ command, envs: ctx.env, cwd: cwdOf(ctx), user: ctx.user });
  const log = deps.logger.child({ sandbox: row.id, build: row.template_build_id });
  const pid = await guest.startBackground(launch(spec.start_cmd as string), "start_cmd");
  log.info("template start command started again after a reboot", { pid });
  if (!spec.ready_cmd) {
    await new Promise((r) => setTimeout(r, NO_READY_CHECK_WAIT_MS));
    return;
  }
  const deadline = Date.now() + spec.ready_timeout_sec * 1000;
  while (!(await check(guest, launch(spec.ready_cmd), 10_000))) {
    if (Date.now() > deadline) {
      log.warn("template ready check did not pass after a reboot", {
        readyCmd: spec.ready_cmd,
        timeoutSec: spec.ready_timeout_sec,
      });
      return;
    }
    await new Promise((r) => setTimeout(r, READY_POLL_MS));
  }
}
