import type { Logger } from "@wrenn/shared";

/**
 * Records how to undo each step of a multi-step operation so a failure at any
 * point unwinds exactly what was done, newest first.
 */
export class UndoStack {
  private readonly steps: { what: string; undo: () => Promise<unknown> }[] = [];

  push(what: string, undo: () => Promise<unknown>): void {
    this.steps.push({ what, undo });
  }

  /** Runs every undo step, newest first; keeps going past failures and logs them. */
  async unwind(logger: Logger): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop();
      if (!step) break;
      try {
        await step.undo();
      } catch (err) {
        logger.error("undo step failed", { step: step.what, err });
      }
    }
  }

  clear(): void {
    this.steps.length = 0;
  }
}
