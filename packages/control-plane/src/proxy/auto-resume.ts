import type { Logger } from "@wrenn/shared";
import { SYSTEM_ACTOR } from "../auth/principal.js";
import type { SandboxesService } from "../services/sandboxes-service.js";

/**
 * Resumes paused sandboxes that have auto resume when traffic reaches them through the
 * proxy. Requests arriving together share one resume; a failed resume (already running,
 * gone, no capacity) just leaves the caller with the sandbox's current state.
 */
export class AutoResumer {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly sandboxes: Pick<SandboxesService, "resume">,
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
        (err: unknown) => this.logger.warn("auto resume failed", { sandboxId, err }),
      )
      .finally(() => this.inFlight.delete(sandboxId));
    this.inFlight.set(sandboxId, attempt);
    return attempt;
  }
}
