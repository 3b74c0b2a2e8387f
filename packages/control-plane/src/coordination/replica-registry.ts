import { sql } from "kysely";
import type { Db } from "../db/database.js";

/**
 * This replica's row in `replicas`. A replica is live while its row was seen within
 * `deadMs` (database clock); a stopping replica deletes its row, so it is dead at once.
 */
export class ReplicaRegistry {
  constructor(
    private readonly db: Db,
    readonly id: string,
    readonly deadMs: number,
  ) {}

  async heartbeat(): Promise<void> {
    await sql`INSERT INTO replicas (id) VALUES (${this.id})
      ON CONFLICT (id) DO UPDATE SET last_seen_at = now()`.execute(this.db);
  }

  async remove(): Promise<void> {
    await this.db.deleteFrom("replicas").where("id", "=", this.id).execute();
  }

  /** Deletes the rows of replicas unseen for a day (killed ones never delete their own). */
  async pruneDead(): Promise<void> {
    await sql`DELETE FROM replicas WHERE last_seen_at < now() - interval '1 day'`.execute(this.db);
  }

  /** SQL that is true when the replica `idColumn` names is live (for use in a WHERE). */
  liveCondition(idColumn: string) {
    return sql<boolean>`EXISTS (SELECT 1 FROM replicas r WHERE r.id = ${sql.ref(idColumn)}
      AND r.last_seen_at > now() - ${this.deadMs} * interval '1 millisecond')`;
  }
}
