import type { GuestClient } from "@wrenn/guest-client";
import { WrennError } from "@wrenn/shared";
import type { NetworkPolicy } from "@wrenn/shared/network-policy";
import { sql } from "kysely";
import type { Principal } from "../auth/principal.js";
import { afterCursor } from "../db/keyset.js";
import type { HostRow, SandboxRow, SandboxStateName } from "../db/schema.js";
import type { HostAgentClient } from "../drivers/host-pool.js";
import { endOperation, startOperation } from "../lifecycle/operation-marks.js";
import { LIVE_STATES, revertTransition, transitionSandbox } from "../lifecycle/sandbox-states.js";
import { type Cursor, decodeCursor } from "../validation.js";
import { endpointOf } from "./host-endpoint.js";
import { auditSandbox, type SandboxAction } from "./sandbox-audit.js";
import { forkSandbox } from "./sandbox-fork.js";
import { type ExecResult, type OpenGuest, type ProcessInput, SandboxGuest } from "./sandbox-guest.js";
import { rowFieldsFromAgent } from "./sandbox-info.js";
import { type LaunchInput, launchSandbox, type StartPoint } from "./sandbox-launch.js";
import { type SandboxNetworkInput, updateSandboxNetwork } from "./sandbox-network.js";
import type { ServiceDeps } from "./service-deps.js";
import { type Replicate, resolveStartPoint } from "./start-points.js";
import { VolumesService } from "./volumes-service.js";

export type { ExecResult, ProcessInput };

/** Work in a sandbox whose VM a resume booted from its disk (a built template's start command). */
export type AfterReboot = (row: SandboxRow, guest: GuestClient) => Promise<void>;

export interface CreateSandboxInput {
  template: string;
  vcpus?: number | undefined;
  memoryMiB?: number | undefined;
  diskMiB?: number | undefined;
  timeoutSec?: number | undefined;
  onTimeout?: "destroy" | "pause" | undefined;
  /** False: the timeout's pause keeps only the disk (a resume cold-boots); needs `onTimeout: "pause"`. */
  onTimeoutKeepMemory?: boolean | undefined;
  /** Resume on the first proxied request while paused; needs `onTimeout: "pause"` keeping memory. */
  autoResume?: boolean | undefined;
  env: Record<string, string>;
  metadata: Record<string, string>;
  /** Volumes of the caller's team, by name or id, and where the guest mounts them. */
  volumeMounts?: Array<{ name: string; path: string }> | undefined;
  /** Egress policy and public traffic; unset policy: the template's (snapshot) or open. */
  network?: SandboxNetworkInput | undefined;
  /** Place only on a host whose tags include all of these. */
  hostTags?: Record<string, string> | undefined;
}

export interface PauseOptions {
  /** False: keep only the disk (no memory snapshot); the next resume cold-boots. Default true. */
  keepMemory?: boolean | undefined;
}

export interface ResumeOptions {
  /** Cold-boot from the disk even when the pause kept memory. */
  reboot?: boolean | undefined;
}

export interface ListSandboxesInput {
  states?: SandboxStateName[] | undefined;
  metadata?: Record<string, string> | undefined;
  limit: number;
  cursor?: string | undefined;
}

/**
 * Sandboxes: placement, creation and every operation on a running one. State changes
 * are written to the database first and undone when the host's RPC fails. Commands and
 * files go to the guest itself (SandboxGuest), not through the agent's RPC.
 */
export class SandboxesService {
  /** Commands, processes and files in a running sandbox of the caller's team. */
  readonly guest: SandboxGuest;
  private replicate: Replicate | undefined;
  private afterReboot: AfterReboot | undefined;

  constructor(private readonly deps: ServiceDeps) {
    this.guest = new SandboxGuest(deps, (principal, id) => this.running(principal, id));
  }

  /** A sandbox of the caller's team; any other id is not found. */
  async get(principal: Principal, id: string): Promise<SandboxRow> {
    const row = await this.deps.db
      .selectFrom("sandboxes")
      .selectAll()
      .where("id", "=", id)
      .where("team_id", "=", principal.teamId)
      .executeTakeFirst();
    if (!row) throw new WrennError("not_found", `sandbox ${id} not found`);
    return row;
  }

  async list(principal: Principal, input: ListSandboxesInput): Promise<SandboxRow[]> {
    const cursor: Cursor | null = decodeCursor(input.cursor);
    let query = this.deps.db
      .selectFrom("sandboxes")
      .selectAll()
      .where("team_id", "=", principal.teamId)
      .orderBy("created_at")
      .orderBy("id")
      .limit(input.limit + 1);
    query = query.where("build_id", "is", null);
    if (input.states && input.states.length > 0) query = query.where("state", "in", input.states);
    if (input.metadata && Object.keys(input.metadata).length > 0) {
      const wanted = JSON.stringify(input.metadata);
      query = query.where(sql<boolean>`metadata @> ${wanted}::jsonb`);
    }
    if (cursor) query = query.where(afterCursor(cursor));
    return query.execute();
  }

  private async host(hostId: string | null): Promise<HostRow> {
    if (!hostId) throw new WrennError("unavailable", "sandbox has no host");
    const host = await this.deps.db
      .selectFrom("hosts")
      .selectAll()
      .where("id", "=", hostId)
      .executeTakeFirst();
    if (!host) throw new WrennError("unavailable", `host ${hostId} is gone`);
    return host;
  }

  /**
   * The guest client of a running sandbox, for streams (exec, terminals) that outlive one
   * call; the caller checked the sandbox with running().
   */
  guestFor(row: SandboxRow): Promise<OpenGuest> {
    return this.guest.open(row);
  }

  /** Calls the agent holding a sandbox. */
  private async onHost<T>(row: SandboxRow, rpc: (client: HostAgentClient) => Promise<T>): Promise<T> {
    const host = await this.host(row.host_id);
    if (host.state !== "up") throw new WrennError("unavailable", `host ${host.id} is ${host.state}`);
    return this.deps.hosts.call(endpointOf(host), rpc);
  }

  /**
   * Whether a sandbox's host cannot be asked now (unreachable, revoked, deleted): a destroy
   * still ends the sandbox, and the reconciler destroys what the host has of it should the
   * host answer again (a VM whose row is stopped).
   */
  private async hostGone(hostId: string | null): Promise<boolean> {
    if (!hostId) return true;
    const host = await this.deps.db
      .selectFrom("hosts")
      .select("state")
      .where("id", "=", hostId)
      .executeTakeFirst();
    return !host || (host.state !== "up" && host.state !== "pending");
  }

  /** A sandbox that must be running for the operation. */
  async running(principal: Principal, id: string): Promise<SandboxRow> {
    const row = await this.get(principal, id);
    if (row.state !== "running")
      throw new WrennError("conflict", `sandbox ${id} is ${row.state}, not running`);
    return row;
  }

  private audited<T>(
    principal: Principal,
    id: string,
    what: SandboxAction,
    work: () => Promise<T>,
  ): Promise<T> {
    return auditSandbox(this.deps.audit, principal, id, what, work);
  }

  /** Lets a built template be made on a host that lacks it (set by the templates service). */
  useReplication(replicate: Replicate): void {
    this.replicate = replicate;
  }

  /** Runs in a sandbox a resume cold-booted, before the resume returns. */
  useAfterReboot(hook: AfterReboot): void {
    this.afterReboot = hook;
  }

  async create(principal: Principal, input: CreateSandboxInput): Promise<SandboxRow> {
    const { audit } = this.deps;
    return audit.track(
      {
        teamId: principal.teamId,
        actor: principal.actor,
        action: "sandbox.create",
        resourceType: "sandbox",
        details: { template: input.template },
      },
      () => this.createUnaudited(principal, input),
      (row) => row.id,
    );
  }

  private async createUnaudited(principal: Principal, input: CreateSandboxInput): Promise<SandboxRow> {
    if (input.autoResume && input.onTimeout !== "pause") {
      throw new WrennError(
        "invalid_argument",
        "auto resume needs the sandbox to pause on timeout (on_timeout: pause)",
      );
    }
    if (input.onTimeoutKeepMemory === false && input.onTimeout === "destroy") {
      throw new WrennError("invalid_argument", "keeping memory or not applies only to on_timeout: pause");
    }
    if (input.autoResume && input.onTimeoutKeepMemory === false) {
      throw new WrennError(
        "invalid_argument",
        "auto resume needs a timeout pause that keeps memory: a filesystem-only pause is resumed explicitly",
      );
    }
    const start = await resolveStartPoint(this.deps.db, principal.teamId, input.template, this.replicate);
    const volumeMounts = await new VolumesService(this.deps).resolveMounts(
      principal,
      input.volumeMounts ?? [],
    );
    const id = await launchSandbox(this.deps, principal, start, {
      ...input,
      volumeMounts,
      timeoutSec: input.timeoutSec ?? this.deps.config.defaultTimeoutSec,
      onTimeout: input.onTimeout ?? "pause",
      autoResume: input.autoResume ?? false,
    });
    return this.get(principal, id);
  }

  /** A template build's VM, from `start` (not listed to users, no sandbox events). */
  async createBuildVm(principal: Principal, start: StartPoint, input: LaunchInput): Promise<SandboxRow> {
    const id = await launchSandbox(this.deps, principal, start, input);
    return this.get(principal, id);
  }

  async destroy(principal: Principal, id: string): Promise<void> {
    const row = await this.get(principal, id);
    if (row.state === "stopped") return;
    await this.audited(principal, id, "sandbox.destroy", async () => {
      const before = await transitionSandbox(
        this.deps.db,
        id,
        ["pending", "running", "paused", "missing", "error"],
        "stopped",
      );
      try {
        await this.onHost(before, (c) => c.destroySandbox({ sandboxId: id }));
      } catch (err) {
        const error = WrennError.from(err);
        if (error.code !== "not_found" && !(await this.hostGone(before.host_id))) {
          await revertTransition(this.deps.db, before, "stopped");
          throw error;
        }
      }
      this.deps.events.publish("sandbox.destroyed", principal.teamId, { sandbox_id: id });
    });
  }

  /**
   * Pauses a running sandbox: with memory (processes survive), or with `keepMemory: false`
   * keeping only its disk (the next resume cold-boots from it).
   */
  async pause(principal: Principal, id: string, options: PauseOptions = {}): Promise<SandboxRow> {
    await this.get(principal, id);
    const keepMemory = options.keepMemory ?? true;
    const action: SandboxAction = keepMemory
      ? "sandbox.pause"
      : { action: "sandbox.pause", details: { keep_memory: false } };
    return this.audited(principal, id, action, async () => {
      const before = await transitionSandbox(this.deps.db, id, ["running"], "paused", {
        paused_without_memory: !keepMemory,
        ...startOperation("pause", this.deps.replica.id),
      });
      try {
        await this.onHost(before, (c) => c.pauseSandbox({ sandboxId: id, keepMemory }));
      } catch (err) {
        if (await revertTransition(this.deps.db, before, "paused")) {
          await this.deps.db
            .updateTable("sandboxes")
            .set({ paused_without_memory: before.paused_without_memory })
            .where("id", "=", id)
            .execute();
        }
        throw err;
      }
      await endOperation(this.deps.db, id, "pause");
      this.deps.events.publish("sandbox.paused", principal.teamId, { sandbox_id: id });
      return this.get(principal, id);
    });
  }

  /**
   * Resumes a paused sandbox: restores its memory, or cold-boots from its disk when it was
   * paused without memory or `reboot` asks for it.
   */
  async resume(
    principal: Principal,
    id: string,
    timeoutSec?: number,
    options: ResumeOptions = {},
  ): Promise<SandboxRow> {
    await this.get(principal, id);
    const reboot = options.reboot ?? false;
    const action: SandboxAction = reboot
      ? { action: "sandbox.resume", details: { reboot } }
      : "sandbox.resume";
    return this.audited(principal, id, action, async () => {
      const before = await transitionSandbox(this.deps.db, id, ["paused"], "running", {
        ...(timeoutSec ? { timeout_sec: timeoutSec } : {}),
        ...startOperation("resume", this.deps.replica.id),
      });
      let res: Awaited<ReturnType<HostAgentClient["resumeSandbox"]>>;
      try {
        res = await this.onHost(before, (c) =>
          c.resumeSandbox({ sandboxId: id, timeoutSec: timeoutSec ?? 0, reboot }),
        );
      } catch (err) {
        await revertTransition(this.deps.db, before, "running");
        throw err;
      }
      await this.deps.db
        .updateTable("sandboxes")
        .set(rowFieldsFromAgent(res.sandbox))
        .where("id", "=", id)
        .execute();
      await endOperation(this.deps.db, id, "resume");
      if ((reboot || before.paused_without_memory) && this.afterReboot) {
        // The sandbox runs either way: a failure here is the guest's, logged like a crashed process.
        await this.guest
          .open(before)
          .then(({ guest }) => this.afterReboot?.(before, guest))
          .catch((err: unknown) => this.deps.logger.warn("after-reboot work failed", { sandbox: id, err }));
      }
      this.deps.events.publish("sandbox.resumed", principal.teamId, { sandbox_id: id });
      return this.get(principal, id);
    });
  }

  /** Marks activity (extends the inactivity timeout) and optionally sets a new timeout. */
  async keepAlive(principal: Principal, id: string, timeoutSec?: number): Promise<SandboxRow> {
    const row = await this.running(principal, id);
    const work = async () => {
      const res = await this.onHost(row, (c) =>
        c.pingSandbox({ sandboxId: id, timeoutSec: timeoutSec ?? 0 }),
      );
      await this.deps.db
        .updateTable("sandboxes")
        .set({ ...rowFieldsFromAgent(res.sandbox), ...(timeoutSec ? { timeout_sec: timeoutSec } : {}) })
        .where("id", "=", id)
        .execute();
      return this.get(principal, id);
    };
    if (timeoutSec === undefined) return work();
    return this.audited(
      principal,
      id,
      { action: "sandbox.set_timeout", details: { timeout_sec: timeoutSec } },
      work,
    );
  }

  async metrics(principal: Principal, id: string) {
    return this.metricsOf(await this.running(principal, id));
  }

  /** One sample of a sandbox row already known to be running (the metrics sampler's path). */
  metricsOf(row: SandboxRow, timeoutMs?: number) {
    return this.onHost(row, (c) => c.getSandboxMetrics({ sandboxId: row.id }, { timeoutMs }));
  }

  /**
   * Forks a running sandbox into `count` new ones on the same host (they share its
   * memory). The agent names the forks, so their rows are written once it answers.
   */
  async fork(
    principal: Principal,
    id: string,
    count: number,
    metadata: Record<string, string>,
  ): Promise<SandboxRow[]> {
    const row = await this.running(principal, id);
    return this.audited(principal, id, { action: "sandbox.fork", details: { count } }, () =>
      forkSandbox(this.deps, principal, row, count, metadata, (rpc) => this.onHost(row, rpc)),
    );
  }

  /** Replaces the egress policy of a running or paused sandbox (enforced by its agent). */
  async updateNetwork(principal: Principal, id: string, policy: NetworkPolicy): Promise<SandboxRow> {
    const row = await this.get(principal, id);
    return updateSandboxNetwork(this.deps, principal, row, policy, (rpc) => this.onHost(row, rpc));
  }

  /** Live sandboxes of a host (used by the reconciler and host deletion). */
  async liveOnHost(hostId: string): Promise<SandboxRow[]> {
    return this.deps.db
      .selectFrom("sandboxes")
      .selectAll()
      .where("host_id", "=", hostId)
      .where("state", "in", LIVE_STATES)
      .execute();
  }
}
