import { appendFileSync } from "node:fs";

/** One cell of the fault suite: a fault injected at one step, and what came of it. */
export interface FaultCell {
  fault: string;
  step: string;
  /** How the fault was timed (the signal that triggered it, or a fallback). */
  trigger: string;
  /** What the system did: the sandbox's settled state, and whether every check passed. */
  outcome: string;
  passed: boolean;
  /** Seconds from the fault until every check passed (or failed). */
  seconds: number;
}

/** Collects the cells of a run and prints them as one table (fault × step → outcome). */
export class FaultTable {
  private readonly cells: FaultCell[] = [];

  add(cell: FaultCell): void {
    this.cells.push(cell);
  }

  /** Times `run` and records its cell; a throw records a failed cell and is rethrown. */
  async cell(
    fault: string,
    step: string,
    run: () => Promise<{ trigger: string; outcome: string }>,
  ): Promise<void> {
    const started = Date.now();
    try {
      const { trigger, outcome } = await run();
      this.add({ fault, step, trigger, outcome, passed: true, seconds: (Date.now() - started) / 1000 });
    } catch (err) {
      const outcome = `FAILED: ${(err as Error).message.split("\n")[0]?.slice(0, 160)}`;
      this.add({ fault, step, trigger: "-", outcome, passed: false, seconds: (Date.now() - started) / 1000 });
      throw err;
    }
  }

  /** A markdown table, one row per cell. */
  render(): string {
    const cellText = (s: string) => s.replaceAll("|", "\\|");
    const lines = [
      "| fault | step | trigger | outcome | checks | s |",
      "|---|---|---|---|---|---|",
      ...this.cells.map(
        (c) =>
          `| ${cellText(c.fault)} | ${cellText(c.step)} | ${cellText(c.trigger)} | ${cellText(c.outcome)} | ${c.passed ? "pass" : "FAIL"} | ${c.seconds.toFixed(1)} |`,
      ),
    ];
    return lines.join("\n");
  }

  /** Prints the table; appends it to WRENN_FAULTS_RESULTS (a file) when that is set. */
  print(title: string): void {
    if (this.cells.length === 0) return;
    const text = `\n### ${title}\n\n${this.render()}\n`;
    console.log(text);
    const file = process.env.WRENN_FAULTS_RESULTS;
    if (file) appendFileSync(file, text);
  }
}
