import { randomId, runLimited, WrennError } from "@wrenn/shared";
import { sql } from "kysely";
import type { Principal } from "../auth/principal.js";
import type { Services } from "../create-services.js";
import type { Db } from "../db/database.js";
import type { SandboxRow, SandboxStateName, TemplateRow } from "../db/schema.js";
import { teamSnapshots } from "../services/snapshots-service.js";
import { type Cursor, decodeCursor, encodeCursor } from "../validation.js";
import { e2bState, endAt } from "./e2b-views.js";

export interface E2bListInput {
  states: SandboxStateName[];
  metadata?: Record<string, string> | undefined;
  template?: string | undefined;
  startedAfter?: Date | undefined;
  order: "asc" | "desc";
  limit: number;
  nextToken?: string | undefined;
}

export interface Page<T> {
  items: T[];
  nextToken: string | null;
}

/** e2b fork creates this many sandboxes at once. */
const FORK_CONCURRENCY = 4;

/**
 * The e2b API's semantics over the native services: its states (stopped sandboxes are
 * not found), connect (resume a paused sandbox, only ever extend a running one's
 * timeout), snapshots addressed by name, and its list filters and order.
 */
export class E2bService {
  constructor(
    private readonly db: Db,
    private readonly services: Services,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** A sandbox of the caller's team that is still alive in the e2b sense. */
  async live(principal: Principal, id: string): Promise<SandboxRow> {
    const row = await this.services.sandboxes.get(principal, id);
    if (e2bState(row.state) === null) throw new WrennError("not_found", `sandbox ${id} not found`);
    return row;
  }

  async kill(principal: Principal, id: string): Promise<void> {
    const row = await this.services.sandboxes.get(principal, id);
    if (row.state === "stopped") throw new WrennError("not_found", `sandbox ${id} not found`);
    await this.services.sandboxes.destroy(principal, id);
  }

  /** Pauses a running sandbox; `keepMemory: false` keeps only its disk (resume reboots it). */
  async pause(principal: Principal, id: string, keepMemory = true): Promise<void> {
    const row = await this.live(principal, id);
    if (row.state === "paused") throw new WrennError("conflict", `sandbox ${id} is already paused`);
    await this.services.sandboxes.pause(principal, id, { keepMemory });
  }

  /**
   * Resumes a paused sandbox (`resumed: true`; `reboot` cold-boots it from disk even when its
   * pause kept memory) or refreshes a running one: its end moves to now + timeout only when
   * that is later than its current end, never earlier (e2b timeouts are absolute).
   */
  async connect(
    principal: Principal,
    id: string,
    timeoutSec: number,
    options: { reboot?: boolean | undefined } = {},
  ): Promise<{ row: SandboxRow; resumed: boolean }> {
    const row = await this.live(principal, id);
    if (row.state === "paused") {
      return {
        row: await this.services.sandboxes.resume(principal, id, timeoutSec, { reboot: options.reboot }),
        resumed: true,
      };
    }
    if (this.now().getTime() + timeoutSec * 1000 <= endAt(row).getTime()) return { row, resumed: false };
    return { row: await this.services.sandboxes.keepAlive(principal, id, timeoutSec), resumed: false };
  }

  /**
   * Forks a running sandbox: a snapshot of it, `count` sandboxes created from that, then
   * the snapshot's name dropped (its files go with the last fork). Unlike `/v1` fork (one
   * agent call, all or nothing), each fork succeeds or fails on its own, as the e2b API
   * reports them.
   */
  async fork(
    principal: Principal,
    id: string,
    count: number,
    timeoutSec: number | undefined,
  ): Promise<({ row: SandboxRow } | { error: WrennError })[]> {
    const source = await this.live(principal, id);
    if (source.state !== "running")
      throw new WrennError("conflict", `sandbox ${id} is ${source.state}, not running`);
    const name = `fork-${randomId(16)}`;
    await this.services.snapshots.create(principal, { sandboxId: id, name });
    const results: ({ row: SandboxRow } | { error: WrennError })[] = [];
    const createOne = async (i: number) => {
      try {
        const row = await this.services.sandboxes.create(principal, {
          template: name,
          timeoutSec: timeoutSec ?? source.timeout_sec,
          env: {},
          metadata: source.metadata,
          // The policy comes with the snapshot; public traffic stays as the source's (own token).
          network: {
            allowPublicTraffic: source.traffic_access_token === null,
            maskRequestHost: source.mask_request_host ?? undefined,
          },
        });
        results[i] = { row };
      } catch (err) {
        results[i] = { error: WrennError.from(err) };
      }
    };
    try {
      // A few at a time (the agent queues VM starts anyway), results in the order asked.
      await runLimited(count, FORK_CONCURRENCY, createOne);
    } finally {
      await this.services.snapshots.delete(principal, name, true);
    }
    return results;
  }

  /** Sandboxes of the team, filtered and ordered by start time, one page at a time. */
  async list(principal: Principal, input: E2bListInput): Promise<Page<SandboxRow>> {
    const cursor: Cursor | null = decodeCursor(input.nextToken);
    const direction = input.order;
    const after = direction === "asc" ? ">" : "<";
    let query = this.db
      .selectFrom("sandboxes")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .where("state", "in", input.states)
      .orderBy("created_at", direction)
      .orderBy("id", direction)
      .limit(input.limit + 1);
    if (input.metadata && Object.keys(input.metadata).length > 0) {
      query = query.where(sql<boolean>`metadata @> ${JSON.stringify(input.metadata)}::jsonb`);
    }
    if (input.startedAfter) query = query.where("created_at", ">=", input.startedAfter);
    if (input.template) {
      const template = input.template;
      query = query.where((eb) =>
        eb.or([
          eb("template", "=", template),
          eb(
            "snapshot_id",
            "in",
            eb
              .selectFrom("templates")
              .select("id")
              .where("team_id", "=", principal.teamId)
              .where("name", "=", template),
          ),
        ]),
      );
    }
    if (cursor) {
      query = query.where((eb) =>
        eb.or([
          eb("created_at", after, cursor.createdAt),
          eb.and([eb("created_at", "=", cursor.createdAt), eb("id", after, cursor.id)]),
        ]),
      );
    }
    const rows = await query.execute();
    return pageOf(rows, input.limit);
  }

  /** The template id each row is reported with: its snapshot's name, else its template. */
  async templateIds(rows: SandboxRow[]): Promise<(row: SandboxRow) => string> {
    const snapshotIds = [...new Set(rows.map((r) => r.snapshot_id).filter((id): id is string => !!id))];
    const names = new Map<string, string>();
    if (snapshotIds.length > 0) {
      const found = await this.db
        .selectFrom("templates")
        .select(["id", "name"])
        .where("id", "in", snapshotIds)
        .execute();
      for (const t of found) names.set(t.id, t.name);
    }
    return (row) => (row.snapshot_id ? (names.get(row.snapshot_id) ?? row.template) : row.template);
  }

  async createSnapshot(
    principal: Principal,
    sandboxId: string,
    name: string | undefined,
  ): Promise<TemplateRow> {
    await this.live(principal, sandboxId);
    return this.services.snapshots.create(principal, {
      sandboxId,
      name: name ?? `snapshot-${randomId(12)}`,
    });
  }

  async listSnapshots(
    principal: Principal,
    input: {
      sandboxId?: string | undefined;
      name?: string | undefined;
      limit: number;
      nextToken?: string | undefined;
    },
  ): Promise<Page<TemplateRow>> {
    const cursor = decodeCursor(input.nextToken);
    let query = teamSnapshots(this.db, principal.teamId)
      .orderBy("created_at")
      .orderBy("id")
      .limit(input.limit + 1);
    if (input.sandboxId) query = query.where("source_sandbox_id", "=", input.sandboxId);
    if (input.name) query = query.where("name", "=", stripTag(input.name));
    if (cursor) {
      query = query.where((eb) =>
        eb.or([
          eb("created_at", ">", cursor.createdAt),
          eb.and([eb("created_at", "=", cursor.createdAt), eb("id", ">", cursor.id)]),
        ]),
      );
    }
    return pageOf(await query.execute(), input.limit);
  }

  /**
   * Deletes a snapshot even while sandboxes started from it (or the sandbox it was taken
   * of) still run: its name goes now, its files when the last of them is gone.
   */
  async deleteSnapshot(principal: Principal, templateId: string): Promise<void> {
    const name = stripTag(templateId);
    const template = await this.services.templates.get(principal, name).catch(() => undefined);
    if (template?.kind === "built") return this.services.templates.delete(principal, template.id);
    await this.services.snapshots.delete(principal, name, true);
  }
}

/** `name:tag` → `name`: snapshots here have one version, whatever tag a caller names. */
export function stripTag(templateId: string): string {
  const colon = templateId.lastIndexOf(":");
  return colon > 0 ? templateId.slice(0, colon) : templateId;
}

function pageOf<R extends { created_at: Date; id: string }>(rows: R[], limit: number): Page<R> {
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  const last = items[items.length - 1];
  return {
    items,
    nextToken: more && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
  };
}
