/**
 * When the port scanner runs next. While something happens in the guest (a request to envd,
 * a localhost listener appearing or going) it scans every `activeMs`; once nothing has
 * happened for `quietAfterMs`, each scan doubles the wait before the next, up to `idleMs`.
 * An idle guest then wakes for a scan only every `idleMs`: under TCG every wakeup of the
 * guest's Node costs host CPU, and a host holds many idle sandboxes.
 */
export interface ScanPace {
  activeMs: number;
  idleMs: number;
  quietAfterMs: number;
}

export class ScanPacer {
  private lastActivity: number;
  private wait: number;

  constructor(
    private readonly pace: ScanPace,
    now: number,
  ) {
    this.lastActivity = now;
    this.wait = pace.activeMs;
  }

  /** Something happened: back to the active pace. */
  activity(now: number): void {
    this.lastActivity = now;
    this.wait = this.pace.activeMs;
  }

  /** The wait after a scan; `changed`: it found other localhost listeners than the scan before. */
  next(changed: boolean, now: number): number {
    if (changed) this.activity(now);
    if (now - this.lastActivity < this.pace.quietAfterMs) this.wait = this.pace.activeMs;
    else this.wait = Math.min(this.pace.idleMs, Math.max(this.pace.activeMs, this.wait * 2));
    return this.wait;
  }

  get activeMs(): number {
    return this.pace.activeMs;
  }
}
