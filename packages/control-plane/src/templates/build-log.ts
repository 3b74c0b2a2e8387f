import type { BuildLogEntryView } from "@wrenn/api";
import type { Db } from "../db/database.js";

type Level = BuildLogEntryView["level"];

/** Longest log message kept; a step's output is split into lines first. */
const MAX_MESSAGE = 8192;

/** Where a build's progress goes. */
export interface StepLog {
  info(step: string, message: string): Promise<void>;
  error(step: string, message: string): Promise<void>;
}

/**
 * A build's log: numbered entries in the database, so any client (the CLI, the E2B SDK's
 * status poll) can read from an offset while the build runs and after it ends.
 */
export class BuildLog implements StepLog {
  private seq = 0;
  private pending: Promise<void> = Promise.resolve();

  constructor(
    private readonly db: Db,
    readonly buildId: string,
    private readonly now: () => Date,
  ) {}

  /** Continues after the entries a build (or an earlier run of it) already has. */
  static async open(db: Db, buildId: string, now: () => Date): Promise<BuildLog> {
    const log = new BuildLog(db, buildId, now);
    const row = await db
      .selectFrom("template_build_logs")
      .select((eb) => eb.fn.max("seq").as("max"))
      .where("build_id", "=", buildId)
      .executeTakeFirst();
    log.seq = row?.max === null || row?.max === undefined ? 0 : Number(row.max) + 1;
    return log;
  }

  /** Appends in order; writes are chained so entries keep their order without awaiting each. */
  write(level: Level, step: string, message: string): Promise<void> {
    const seq = this.seq++;
    const created_at = this.now();
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE)}…` : message;
    this.pending = this.pending.then(() =>
      this.db
        .insertInto("template_build_logs")
        .values({ build_id: this.buildId, seq, created_at, level, step, message: text })
        .execute()
        .then(() => undefined),
    );
    return this.pending;
  }

  info(step: string, message: string): Promise<void> {
    return this.write("info", step, message);
  }

  error(step: string, message: string): Promise<void> {
    return this.write("error", step, message);
  }

  /** Waits for every entry written so far. */
  flush(): Promise<void> {
    return this.pending;
  }
}

/** Splits streamed output into lines, holding back an unfinished last line until more comes. */
export class LineSplitter {
  private rest = "";
  private readonly decoder = new TextDecoder();

  push(bytes: Uint8Array): string[] {
    const text = this.rest + this.decoder.decode(bytes, { stream: true });
    const lines = text.split("\n");
    this.rest = lines.pop() ?? "";
    return lines.map((l) => l.replace(/\r$/, ""));
  }

  end(): string[] {
    const last = this.rest + this.decoder.decode();
    this.rest = "";
    return last ? [last] : [];
  }
}

export async function readBuildLog(
  db: Db,
  buildId: string,
  offset: number,
  limit: number,
): Promise<BuildLogEntryView[]> {
  const rows = await db
    .selectFrom("template_build_logs")
    .selectAll()
    .where("build_id", "=", buildId)
    .where("seq", ">=", offset)
    .orderBy("seq")
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    offset: r.seq,
    timestamp: new Date(r.created_at).toISOString(),
    level: r.level,
    step: r.step,
    message: r.message,
  }));
}
