import { sql } from "kysely";
import type { Db } from "../db/database.js";

/** A lease this replica holds: `fence` grows each time the lease changes holder. */
export interface HeldLease {
  name: string;
  fence: number;
}

/**
 * Named leases in `worker_leases`, timed by the database clock so replicas' clocks never
 * matter. A holder renews before `ttlMs` runs out; once it has, any replica may take it.
 */
export class Leases {
  constructor(
    private readonly db: Db,
    private readonly holder: string,
  ) {}

  /** Takes or renews `name` for `ttlMs`; null while another live holder has it. */
  async acquire(name: string, ttlMs: number): Promise<HeldLease | null> {
    const result = await sql<{ fence: string | number }>`
      INSERT INTO worker_leases (name, holder, expires_at)
      VALUES (${name}, ${this.holder}, now() + ${ttlMs} * interval '1 millisecond')
      ON CONFLICT (name) DO UPDATE SET
        holder = EXCLUDED.holder,
        expires_at = EXCLUDED.expires_at,
        fence = worker_leases.fence + (worker_leases.holder <> EXCLUDED.holder)::int
      WHERE worker_leases.holder = EXCLUDED.holder OR worker_leases.expires_at < now()
      RETURNING fence`.execute(this.db);
    const row = result.rows[0];
    return row ? { name, fence: Number(row.fence) } : null;
  }

  /** Gives `names` up at once (a stopping replica), so another replica needn't wait out the TTL. */
  async release(names: string[]): Promise<void> {
    if (names.length === 0) return;
    await this.db
      .deleteFrom("worker_leases")
      .where("holder", "=", this.holder)
      .where("name", "in", names)
      .execute();
  }
}
