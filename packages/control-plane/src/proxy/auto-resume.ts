import { type Logger, WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import { SYSTEM_ACTOR } from "../auth/principal.js";
import type { Db } from "../db/database.js";
import { type MarkJudge, markStands } from "../lifecycle/operation-marks.js";
import type { SandboxesService } from "../services/sandboxes-service.js";

const POLL_MS = 50;

/**
 * Resumes paused sandboxes that have auto resume when traffic reaches them through the
 * proxy. Requests arriving together share one resume; a failed resume (already running,
 * gone, no capacity) just leaves the caller with the sandbox's current state. When another
 * call's resume won the row (another replica's, or an API call's), the wake lasts while that
 * resume's mark stands (lifecycle/operation-marks.ts), so the traffic does not reach a VM still
 * being restored.
 */
export class AutoResumer {
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(
    private readonly sandboxes: Pick<SandboxesService, "resume">,
    private readonly db: Db,
    /** How a resume mark is judged (its deadline bounds the wait). */
    private readonly judge: MarkJudge,
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

  /** Waits while the row shows a resume under way elsewhere whose mark stands. */
  private async resumeElsewhere(sandboxId: string): Promise<void> {
    const deadline = Date.now() + this.judge.deadlineMs;
    while (Date.now() < deadline) {
      const row = await this.db
        .selectFrom("sandboxes")
        .leftJoin("replicas", "replicas.id", "sandboxes.operation_replica")
        .select([
          "sandboxes.operation",
          "sandboxes.operation_started_at",
          "sandboxes.operation_replica",
          "replicas.last_seen_at",
          sql<Date>`now()`.as("now"),
        ])
        .where("sandboxes.id", "=", sandboxId)
        .executeTakeFirst();
      if (row?.operation !== "resume") return;
      const mark = {
        operation: row.operation,
        startedAt: row.operation_started_at,
        replica: row.operation_replica,
        replicaSeenAt: row.last_seen_at,
      };
      if (!markStands(mark, this.judge, new Date(row.now))) return;
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    this.logger.warn("a resume started elsewhere did not end in time", { sandboxId });
  }
}
