import { WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import type { Db } from "../db/database.js";

export interface SigninThrottleOptions {
  /** Failed sign-ins one email may have within the window. */
  maxFailuresPerEmail: number;
  /** Failed sign-ins one client address may have within the window. */
  maxFailuresPerIp: number;
  windowMs: number;
}

/**
 * Counts failed sign-ins per email and per client address in a fixed window, in the
 * `signin_failures` table, so every replica behind a load balancer counts the same failures.
 * Windows are timed by the control plane's clock (`now`); replicas' skew moves a window's
 * end by that much, never lets a guesser past the limit for long.
 */
export class SigninThrottle {
  constructor(
    private readonly db: Db,
    private readonly options: SigninThrottleOptions,
    private readonly now: () => Date,
  ) {}

  /** Throws resource_exhausted while either key is over its limit. */
  async check(email: string, ip: string): Promise<void> {
    const now = this.now();
    const keys = this.keys(email, ip);
    const rows = await this.db
      .selectFrom("signin_failures")
      .selectAll()
      .where(
        "key",
        "in",
        keys.map(([k]) => k),
      )
      .where("reset_at", ">", now)
      .execute();
    for (const [key, limit] of keys) {
      const entry = rows.find((r) => r.key === key);
      if (entry && entry.count >= limit) {
        const retrySec = Math.ceil((new Date(entry.reset_at).getTime() - now.getTime()) / 1000);
        throw new WrennError("resource_exhausted", `too many failed sign-ins; try again in ${retrySec} s`);
      }
    }
  }

  async recordFailure(email: string, ip: string): Promise<void> {
    const now = this.now();
    const resetAt = new Date(now.getTime() + this.options.windowMs);
    for (const [key] of this.keys(email, ip)) {
      await sql`INSERT INTO signin_failures (key, count, reset_at) VALUES (${key}, 1, ${resetAt})
        ON CONFLICT (key) DO UPDATE SET
          count = CASE WHEN signin_failures.reset_at <= ${now} THEN 1 ELSE signin_failures.count + 1 END,
          reset_at = CASE WHEN signin_failures.reset_at <= ${now} THEN EXCLUDED.reset_at
            ELSE signin_failures.reset_at END`.execute(this.db);
    }
  }

  /** A successful sign-in clears its email's count (the address keeps its own). */
  async recordSuccess(email: string): Promise<void> {
    await this.db.deleteFrom("signin_failures").where("key", "=", `email:${email}`).execute();
  }

  /** Deletes windows that have ended (the session-sweep worker). */
  async prune(): Promise<void> {
    await this.db.deleteFrom("signin_failures").where("reset_at", "<=", this.now()).execute();
  }

  private keys(email: string, ip: string): Array<[string, number]> {
    return [
      [`email:${email}`, this.options.maxFailuresPerEmail],
      [`ip:${ip}`, this.options.maxFailuresPerIp],
    ];
  }
}
