import { type Logger, WrennError } from "@wrenn/shared";
import { SYSTEM_ACTOR } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import type { SandboxesService } from "../services/sandboxes-service.js";

const POLL_MS = 50;

/**
 * Resumes paused sandboxes that have auto resume when traffic reaches them through the
 * proxy. Requests arriving together share one resume; a failed resume (already running,
 * gone, no capacity) just leaves the caller with the sandbox's current state. When another
 * replica's resume won the row, the wake lasts until that resume's host call has ended, so
 * the traffic does not reach a VM still being restored.
 */
export class AutoResumer {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly sandboxes: Pick<SandboxesService, "resume">,
    private readonly db: Db,
    /** The longest a resume started elsewhere is waited for (the transition deadline). */
    private readonly waitMs: number,
    private readonly logger: Logger,
  ) {}

  /**
   * Starts a resume (with `teamId`, the sandbox's team) or joins the one under way;
   * resolves once it has ended, either way. Without `teamId` only joins: undefined when
   * no resume is under way.
   */
  wake(sandboxId: string, teamId?: string): Promise<void> | undefined {
    const running = this.inFlight.get(sandboxId);
    if (running) return running;
    if (teamId === undefined) return undefined;
    const principal = { teamId, isAdmin: false, actor: SYSTEM_ACTOR };
    const attempt = this.sandboxes
      .resume(principal, sandboxId)
      .then(
        () => this.logger.info("sandbox resumed by traffic", { sandboxId }),
        async (err: unknown) => {
          if (WrennError.from(err).code === "conflict") return this.resumeElsewhere(sandboxId);
          this.logger.warn("auto resume failed", { sandboxId, err });
        },
      )
      .finally(() => this.inFlight.delete(sandboxId));
    this.inFlight.set(sandboxId, attempt);
    return attempt;
  }

  /** Waits while the row shows a resume under way (another replica's call). */
  private async resumeElsewhere(sandboxId: string): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    while (Date.now() < deadline) {
      const row = await this.db
        .selectFrom("sandboxes")
        .select("operation")
        .where("id", "=", sandboxId)
        .executeTakeFirst();
      if (row?.operation !== "resume") return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    this.logger.warn("a resume started elsewhere did not end in time", { sandboxId });
  }
}
