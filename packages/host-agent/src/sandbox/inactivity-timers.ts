import type { Logger } from "@wrenn/shared";
import type { SandboxEntry } from "./sandbox-deps.js";

/** What a timeout does to a sandbox (the manager's own operations, under its lock). */
export interface TimeoutActions {
  /** `keepMemory` false: a filesystem-only pause. */
  pause(id: string, keepMemory: boolean): Promise<unknown>;
  destroy(id: string): Promise<unknown>;
  /** False once the entry is gone from the registry or stopped running. */
  stillRunning(entry: SandboxEntry): boolean;
}

/** A failed timeout pause is tried again after this long (the sandbox keeps running meanwhile). */
const PAUSE_RETRY_MS = 60_000;
/** setTimeout's largest delay (~24.8 days); a later deadline re-arms on wake. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The inactivity timeout of running sandboxes: activity moves `expiresAt` forward, and when
 * it passes the sandbox is paused or destroyed (its `timeoutAction`).
 */
export class InactivityTimers {
  constructor(
    private readonly now: () => Date,
    private readonly logger: Logger,
    private readonly actions: TimeoutActions,
  ) {}

  /** Marks activity: the deadline moves to now + timeoutSec. */
  touch(entry: SandboxEntry): void {
    entry.record.expiresAt = new Date(this.now().getTime() + entry.record.timeoutSec * 1000).toISOString();
    this.arm(entry);
  }

  /** (Re)arms the timer for the entry's current `expiresAt`. */
  arm(entry: SandboxEntry): void {
    clearTimer(entry);
    const delay = Math.max(0, new Date(entry.record.expiresAt).getTime() - this.now().getTime());
    entry.timer = setTimeout(() => this.onTimeout(entry), Math.min(delay, MAX_DELAY_MS));
    entry.timer.unref();
  }

  private onTimeout(entry: SandboxEntry): void {
    const { record } = entry;
    entry.timer = undefined;
    if (new Date(record.expiresAt).getTime() > this.now().getTime()) {
      this.arm(entry);
      return;
    }
    this.logger.info("sandbox inactivity timeout", { sandbox: record.id, action: record.timeoutAction });
    if (record.timeoutAction === "pause" || record.timeoutAction === "pause-filesystem") {
      this.actions.pause(record.id, record.timeoutAction === "pause").catch((err: unknown) => {
        this.logger.error("timeout pause failed; retrying in a minute", { sandbox: record.id, err });
        if (this.actions.stillRunning(entry)) {
          record.expiresAt = new Date(this.now().getTime() + PAUSE_RETRY_MS).toISOString();
          this.arm(entry);
        }
      });
      return;
    }
    this.actions
      .destroy(record.id)
      .catch((err: unknown) => this.logger.error("timeout destroy failed", { sandbox: record.id, err }));
  }
}

export function clearTimer(entry: SandboxEntry): void {
  if (entry.timer) clearTimeout(entry.timer);
  entry.timer = undefined;
}
