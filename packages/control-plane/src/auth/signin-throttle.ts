import { WrennError } from "@wrenn/shared";

export interface SigninThrottleOptions {
  /** Failed sign-ins one email may have within the window. */
  maxFailuresPerEmail: number;
  /** Failed sign-ins one client address may have within the window. */
  maxFailuresPerIp: number;
  windowMs: number;
}

/**
 * Counts failed sign-ins per email and per client address in a fixed window, in memory: a
 * restart forgets them, which only gives a guesser a fresh window, never a way in.
 */
export class SigninThrottle {
  private readonly failures = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly options: SigninThrottleOptions,
    private readonly now: () => Date,
  ) {}

  /** Throws resource_exhausted while either key is over its limit. */
  check(email: string, ip: string): void {
    const now = this.now().getTime();
    for (const [key, limit] of this.keys(email, ip)) {
      const entry = this.failures.get(key);
      if (entry && entry.resetAt > now && entry.count >= limit) {
        const retrySec = Math.ceil((entry.resetAt - now) / 1000);
        throw new WrennError("resource_exhausted", `too many failed sign-ins; try again in ${retrySec} s`);
      }
    }
  }

  recordFailure(email: string, ip: string): void {
    const now = this.now().getTime();
    for (const [key] of this.keys(email, ip)) {
      const entry = this.failures.get(key);
      if (!entry || entry.resetAt <= now)
        this.failures.set(key, { count: 1, resetAt: now + this.options.windowMs });
      else entry.count += 1;
    }
    if (this.failures.size > 10_000) this.prune(now);
  }

  /** A successful sign-in clears its email's count (the address keeps its own). */
  recordSuccess(email: string): void {
    this.failures.delete(`email:${email}`);
  }

  private keys(email: string, ip: string): Array<[string, number]> {
    return [
      [`email:${email}`, this.options.maxFailuresPerEmail],
      [`ip:${ip}`, this.options.maxFailuresPerIp],
    ];
  }

  private prune(now: number): void {
    for (const [key, entry] of this.failures) if (entry.resetAt <= now) this.failures.delete(key);
  }
}
