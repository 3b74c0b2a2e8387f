import { Code, ConnectError } from "@connectrpc/connect";
import type { ProcessSelector } from "@wrenn/proto";
import type { ManagedProcess } from "./managed-process.js";

/**
 * How long an ended process stays reachable by Connect, so a client that reconnects
 * just after the exit still learns how it ended (E2B's envd keeps it 30 s too).
 */
const ENDED_RETENTION_MS = 30_000;

/**
 * The processes envd started: running ones (List, input, signals) and recently ended
 * ones (Connect only). A process moves from the first to the second as it ends.
 */
export class ProcessRegistry {
  private readonly running = new Map<number, ManagedProcess>();
  private readonly ended = new Map<number, { proc: ManagedProcess; timer: NodeJS.Timeout }>();

  add(proc: ManagedProcess): void {
    const pid = proc.pid;
    // A reused pid or tag must never be answered with a predecessor's exit.
    this.forget(pid);
    if (proc.tag !== undefined) {
      for (const [endedPid, entry] of this.ended) if (entry.proc.tag === proc.tag) this.forget(endedPid);
    }
    this.running.set(pid, proc);
    proc.onEnd(() => {
      if (this.running.get(pid) !== proc) return;
      this.running.delete(pid);
      const timer = setTimeout(() => {
        if (this.ended.get(pid)?.proc === proc) this.ended.delete(pid);
      }, ENDED_RETENTION_MS);
      timer.unref();
      this.ended.set(pid, { proc, timer });
    });
  }

  list(): ManagedProcess[] {
    return [...this.running.values()];
  }

  /** A running process; NotFound otherwise. */
  get(selector: ProcessSelector | undefined): ManagedProcess {
    return this.find(selector, false);
  }

  /** A running or recently ended process (for Connect); NotFound otherwise. */
  getForConnect(selector: ProcessSelector | undefined): ManagedProcess {
    return this.find(selector, true);
  }

  private find(selector: ProcessSelector | undefined, includeEnded: boolean): ManagedProcess {
    const s = selector?.selector;
    const pools = [
      this.running,
      ...(includeEnded ? [new Map([...this.ended].map(([p, e]) => [p, e.proc]))] : []),
    ];
    if (s?.case === "pid") {
      for (const pool of pools) {
        const proc = pool.get(s.value);
        if (proc) return proc;
      }
      throw new ConnectError(`process with pid ${s.value} not found`, Code.NotFound);
    }
    if (s?.case === "tag") {
      for (const pool of pools) {
        for (const proc of pool.values()) if (proc.tag === s.value) return proc;
      }
      throw new ConnectError(`process with tag ${s.value} not found`, Code.NotFound);
    }
    throw new ConnectError("a process selector (pid or tag) is required", Code.InvalidArgument);
  }

  private forget(pid: number): void {
    const entry = this.ended.get(pid);
    if (!entry) return;
    clearTimeout(entry.timer);
    this.ended.delete(pid);
  }
}
