import { isIPv4 } from "node:net";
import type { Logger } from "@wrenn/shared";
import type { CgroupManager } from "../cgroups/cgroup-manager.js";
import { findDefaultForwardHost } from "./forward-host.js";
import { EXTERNAL, ListenerTable, LOCAL_V4, LOCAL_V6 } from "./listener-table.js";
import type { PortSubsystem } from "./port-subsystem.js";
import { ProcFileReader } from "./proc-file-reader.js";
import { ipv4OfProcWord, parseProcNetTcp, procWordOfIpv4 } from "./proc-net-tcp.js";
import { ScanPacer } from "./scan-pacer.js";
import { type ForwardTarget, type SocatForward, startSocatForward } from "./socat-forward.js";

export interface PortSubsystemOptions {
  logger: Logger;
  /** Between scans while the guest is active. */
  scanIntervalMs: number;
  /** The longest wait between scans once the guest is idle (see ScanPacer). Default scanIntervalMs. */
  idleScanIntervalMs?: number;
  /** Without activity for this long the scanner starts backing off. Default 30000. */
  quietAfterMs?: number;
  /** IPv4 address forwarders listen on; default the first non-loopback IPv4 (resolved at scan time). */
  forwardHost: string | undefined;
  /** Places each socat in the "socat" cgroup. */
  cgroups: CgroupManager;
  /**
   * Which localhost ports get a forwarder; default all. Tests narrow it to their own
   * servers because a development host shares its loopback with unrelated programs.
   */
  shouldForward?: (port: number) => boolean;
  /** Between SIGTERM and SIGKILL when stopping a socat. Default 1000. */
  stopGraceMs?: number;
  /** Wait before forwarding a port again after its socat exited on its own. Default 5000. */
  retryDelayMs?: number;
}

const PROC_NET_TCP = "/proc/net/tcp";
const PROC_NET_TCP6 = "/proc/net/tcp6";

/**
 * Scanner and forwarder in one loop: it reads /proc/net/tcp{,6}, starts a socat for each
 * port listening only on localhost and stops the socats of ports that closed, then waits
 * as the ScanPacer says (scanIntervalMs while the guest is active, up to
 * idleScanIntervalMs once it is quiet; poke() makes it active). Every run of the loop has a generation; stop() bumps it, so a scan still
 * reading when stop() comes starts nothing. Per-scan state lives in fixed buffers (see
 * ListenerTable) so the loop allocates almost nothing.
 */
export function createPortSubsystem(options: PortSubsystemOptions): PortSubsystem {
  const logger = options.logger.child({ component: "ports" });
  const stopGraceMs = options.stopGraceMs ?? 1000;
  const retryDelayMs = options.retryDelayMs ?? 5000;
  if (options.forwardHost !== undefined && !isIPv4(options.forwardHost)) {
    throw new Error(`port forward host must be an IPv4 address, got '${options.forwardHost}'`);
  }

  const table = new ListenerTable();
  const reader = new ProcFileReader();
  /** Forwarders of the current run, by port. */
  const forwards = new Map<number, SocatForward>();
  /** Every socat not yet exited, of any run: what stop() waits for. */
  const live = new Set<SocatForward>();
  /** Ports whose socat died on its own, and when to try again. */
  const retryAt = new Map<number, number>();
  let forwardHost = options.forwardHost;
  let forwardHostWord = forwardHost === undefined ? 0 : (procWordOfIpv4(forwardHost) ?? 0);
  let tcp6Missing = false;
  let running = false;
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let stopped: Promise<void> = Promise.resolve();
  let lastError = "";
  const pacer = new ScanPacer(
    {
      activeMs: options.scanIntervalMs,
      idleMs: Math.max(options.scanIntervalMs, options.idleScanIntervalMs ?? options.scanIntervalMs),
      quietAfterMs: options.quietAfterMs ?? 30_000,
    },
    Date.now(),
  );
  /** The listeners' fingerprint at the last scan (-1: none yet). */
  let lastSignature = -1;
  /** Whether the scan just done found other listeners than the one before it. */
  let changed = false;
  /** When the armed timer fires (0: none armed). */
  let dueAt = 0;

  const resolveForwardHost = (): boolean => {
    if (forwardHost !== undefined) return true;
    forwardHost = findDefaultForwardHost();
    if (forwardHost === undefined) return false;
    forwardHostWord = procWordOfIpv4(forwardHost) ?? 0;
    logger.info("port forward host", { forwardHost });
    return true;
  };

  /** Reads both tables into `table`; false when a stop() came while it waited. */
  const readListeners = async (myGeneration: number): Promise<boolean> => {
    table.reset();
    const length4 = await reader.read(PROC_NET_TCP);
    if (myGeneration !== generation) return false;
    parseProcNetTcp(reader.buffer, length4, false, forwardHostWord, table);
    if (tcp6Missing) return true;
    try {
      const length6 = await reader.read(PROC_NET_TCP6);
      if (myGeneration !== generation) return false;
      parseProcNetTcp(reader.buffer, length6, true, forwardHostWord, table);
    } catch (err) {
      // A kernel without IPv6 has no tcp6 file; stop asking for it.
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      tcp6Missing = true;
    }
    return myGeneration === generation;
  };

  const onForwardExit = (forward: SocatForward, unexpected: boolean) => {
    live.delete(forward);
    if (forwards.get(forward.port) !== forward) return;
    forwards.delete(forward.port);
    if (unexpected) retryAt.set(forward.port, Date.now() + retryDelayMs);
  };

  const startForward = (port: number, target: ForwardTarget, listenHost: string) => {
    logger.info("forwarding port", { port, listenHost, target: target.address });
    const forward = startSocatForward({ port, listenHost, target, logger, onExit: onForwardExit });
    if (forward.exited) return;
    forwards.set(port, forward);
    live.add(forward);
    const pid = forward.pid;
    if (pid !== undefined) {
      options.cgroups.place(pid, "socat").catch((err: unknown) => {
        logger.warn("cannot place socat in its cgroup", { pid, err });
      });
    }
  };

  const reconcile = (listenHost: string, myGeneration: number) => {
    for (const [port, forward] of forwards) {
      if ((table.flags[port] as number) & (LOCAL_V4 | LOCAL_V6)) continue;
      logger.info("port closed, stopping forwarder", { port });
      forwards.delete(port);
      void forward.stop(stopGraceMs);
    }
    const now = Date.now();
    for (const [port, at] of retryAt) {
      if (!((table.flags[port] as number) & (LOCAL_V4 | LOCAL_V6)) || at <= now) retryAt.delete(port);
    }
    for (let i = 0; i < table.touchedCount; i++) {
      const port = table.touched[i] as number;
      const flags = table.flags[port] as number;
      // A port already reachable from outside (0.0.0.0, ::, the forward host) needs no forwarder;
      // a port we forward shows up as EXTERNAL because of our own socat, hence the map check first.
      if (!(flags & (LOCAL_V4 | LOCAL_V6)) || forwards.has(port) || flags & EXTERNAL) continue;
      if (retryAt.has(port) || (options.shouldForward !== undefined && !options.shouldForward(port))) {
        continue;
      }
      if (myGeneration !== generation) return; // stop() came from within this scan
      const target: ForwardTarget =
        flags & LOCAL_V4
          ? { family: 4, address: ipv4OfProcWord(table.localV4Word[port] as number) }
          : { family: 6, address: "::1" };
      startForward(port, target, listenHost);
    }
  };

  /** One scan; never rejects. Reconciles only if no stop() came while it read. */
  const scan = async (myGeneration: number): Promise<void> => {
    try {
      if (!resolveForwardHost() || forwardHost === undefined) {
        throw new Error("no non-loopback IPv4 address to forward ports on");
      }
      if (await readListeners(myGeneration)) {
        const signature = table.signature();
        changed = signature !== lastSignature;
        lastSignature = signature;
        reconcile(forwardHost, myGeneration);
      }
      lastError = "";
    } catch (err) {
      // The loop outlives any one bad scan; a repeating failure is logged once.
      const message = err instanceof Error ? err.message : String(err);
      if (message !== lastError) logger.warn("port scan failed", { err: message });
      lastError = message;
    }
  };

  let tick: () => void = () => {};

  const arm = (delayMs: number) => {
    if (timer !== undefined) clearTimeout(timer);
    dueAt = Date.now() + delayMs;
    timer = setTimeout(tick, delayMs);
    // The HTTP server keeps envd alive; a forgotten subsystem must not keep a test alive.
    timer.unref();
  };

  /** Scans, then waits as the pacer says after the scan ends (scans never overlap), until stopped. */
  const runLoop = (myGeneration: number) => {
    tick = () => {
      dueAt = 0;
      changed = false;
      inFlight = scan(myGeneration).then(() => {
        inFlight = undefined;
        if (myGeneration !== generation) return;
        arm(pacer.next(changed, Date.now()));
      });
    };
    tick();
  };

  const start = () => {
    if (running) return;
    running = true;
    const myGeneration = ++generation;
    // A previous stop() may still be waiting for socats that hold the ports we would bind.
    void stopped.then(() => {
      if (running && generation === myGeneration) runLoop(myGeneration);
    });
  };

  const stop = async () => {
    running = false;
    generation++;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    dueAt = 0;
    const all = (async () => {
      // A scan in flight sees the new generation and starts nothing; wait for its file reads.
      await inFlight;
      forwards.clear();
      retryAt.clear();
      await Promise.all([...live].map((f) => f.stop(stopGraceMs)));
    })();
    stopped = all;
    await all;
  };

  return {
    get running() {
      return running;
    },
    start,
    stop,
    poke() {
      const now = Date.now();
      pacer.activity(now);
      // Bring a long wait forward; a scan in flight (dueAt 0) re-arms at the active pace itself.
      if (running && dueAt - now > pacer.activeMs) arm(pacer.activeMs);
    },
    async restart() {
      const stopping = stop();
      const myGeneration = generation;
      await stopping;
      // A stop() or start() called while this one waited is the caller's latest word.
      if (generation === myGeneration) start();
    },
  };
}
