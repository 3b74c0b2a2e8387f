import type { Logger } from "@wrenn/shared";
import type { Leases } from "../coordination/leases.js";
import type { ReplicaRegistry } from "../coordination/replica-registry.js";

/**
 * A background job run every `intervalMs`; runs never overlap. A "leader" worker (the
 * default) runs on one replica at a time, the one holding the worker's lease; an
 * "every-replica" worker runs on each (work it claims row by row, or this replica's own).
 */
export interface Worker {
  name: string;
  intervalMs: number;
  mode?: "leader" | "every-replica";
  tick(): Promise<void>;
}

/** How replicas share the leader workers (see coordination/). */
export interface WorkerCoordination {
  leases: Leases;
  replicas: ReplicaRegistry;
  /** How often this replica heartbeats and renews (or tries to take) its leases. */
  renewIntervalMs: number;
  /** A lease not renewed for this long passes to another replica. */
  ttlMs: number;
}

/**
 * Runs workers on their intervals until stopped; a failing tick is logged, not fatal. A
 * renewal loop keeps this replica's row and leases fresh; a leader worker ticks only while
 * its lease is known to be held (renewed within the TTL, by this process's monotonic clock).
 */
export class WorkerRunner {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly running = new Set<Promise<void>>();
  /** Leader worker name → performance.now() until which the lease is surely ours. */
  private readonly heldUntil = new Map<string, number>();
  private renewTimer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private stopped = true;
  /** False: only heartbeat (a replica started without background workers). */
  private ticking = true;

  constructor(
    private readonly workers: Worker[],
    private readonly logger: Logger,
    private readonly coordination?: WorkerCoordination,
  ) {}

  start(options: { workers?: boolean } = {}): void {
    this.stopped = false;
    this.ticking = options.workers ?? true;
    if (this.coordination) this.renewLoop();
    if (this.ticking) for (const worker of this.workers) this.schedule(worker);
  }

  /** Leader workers whose lease this replica holds now. */
  holding(): string[] {
    const at = performance.now();
    return [...this.heldUntil].filter(([, until]) => until > at).map(([name]) => name);
  }

  /**
   * Whether this replica may run leader work `name` now: always without coordination or with
   * workers off (a replica that runs no workers is alone: tests, one-off commands).
   */
  holds(name: string): boolean {
    if (!this.coordination || !this.ticking) return true;
    return (this.heldUntil.get(name) ?? 0) > performance.now();
  }

  private leaderNames(): string[] {
    if (!this.ticking) return [];
    return this.workers.filter((w) => (w.mode ?? "leader") === "leader").map((w) => w.name);
  }

  private renewLoop(): void {
    if (this.stopped) return;
    this.renewing = this.renewAll().finally(() => {
      this.renewing = undefined;
      if (!this.stopped)
        this.renewTimer = setTimeout(() => this.renewLoop(), this.coordination?.renewIntervalMs);
    });
  }

  private async renewAll(): Promise<void> {
    const c = this.coordination;
    if (!c) return;
    try {
      await c.replicas.heartbeat();
    } catch (err) {
      this.logger.warn("replica heartbeat failed", { err });
    }
    for (const name of this.leaderNames()) await this.renew(name);
  }

  private async renew(name: string): Promise<boolean> {
    const c = this.coordination;
    if (!c) return true;
    const asked = performance.now();
    try {
      const lease = await c.leases.acquire(name, c.ttlMs);
      const had = this.holds(name);
      if (lease) this.heldUntil.set(name, asked + c.ttlMs);
      else this.heldUntil.delete(name);
      if (lease && !had) this.logger.info("worker lease taken", { worker: name, fence: lease.fence });
      if (!lease && had) this.logger.info("worker lease lost", { worker: name });
      return lease !== null;
    } catch (err) {
      this.logger.warn("worker lease renewal failed", { worker: name, err });
      return this.holds(name);
    }
  }

  private schedule(worker: Worker): void {
    if (this.stopped) return;
    const timer = setTimeout(() => {
      const run = this.tickIfMine(worker)
        .catch((err: unknown) => this.logger.error("worker tick failed", { worker: worker.name, err }))
        .finally(() => {
          this.running.delete(run);
          this.schedule(worker);
        });
      this.running.add(run);
    }, worker.intervalMs);
    this.timers.set(worker.name, timer);
  }

  private async tickIfMine(worker: Worker): Promise<void> {
    if ((worker.mode ?? "leader") === "leader" && !(await this.renew(worker.name))) return;
    if (this.stopped) return;
    await worker.tick();
  }

  /** Runs one tick of each worker now, leases aside (tests; operators' "reconcile now"). */
  async runOnce(): Promise<void> {
    for (const worker of this.workers) {
      await worker
        .tick()
        .catch((err: unknown) => this.logger.error("worker tick failed", { worker: worker.name, err }));
    }
  }

  /**
   * Stops the timers and waits for running ticks. With `release` (the default) the leases and
   * this replica's row are given up, so others take over at once; without, this replica looks
   * like one that died, and others take over when its leases expire.
   */
  async stop(options: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.renewTimer);
    await Promise.allSettled([...this.running, this.renewing]);
    const c = this.coordination;
    const held = this.holding();
    this.heldUntil.clear();
    if (!c || options.release === false) return;
    try {
      await c.leases.release(held);
      await c.replicas.remove();
    } catch (err) {
      this.logger.warn("releasing worker leases failed", { err });
    }
  }
}
