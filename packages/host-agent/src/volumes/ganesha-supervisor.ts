import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";

/**
 * Runs the host's one nfs-ganesha (the volume server) from a config the agent writes. It is
 * started detached like the VMMs, so it outlives an agent restart and is adopted again by its
 * pidfile; a ganesha restart is harmless anyway (file handles persist, guests reconnect).
 * Export changes are applied with SIGHUP, and a change is done when ganesha logs that it
 * re-read its exports (the reload is asynchronous to the signal).
 *
 * ganesha 4.3 exits at start unless it can register with rpcbind, so one is started when none
 * answers on its socket. Guests never ask rpcbind (they mount with explicit ports).
 */

export interface GaneshaSupervisorOptions {
  /** Holds ganesha.conf, ganesha.log, ganesha.pid. */
  dir: string;
  binary?: string | undefined;
  rpcbindBinary?: string | undefined;
  /** Where rpcbind listens (default /run/rpcbind.sock). */
  rpcbindSocket?: string | undefined;
  startTimeoutMs?: number | undefined;
  reloadTimeoutMs?: number | undefined;
}

const READY_LINE = "NFS SERVER INITIALIZED";
const RELOADED_LINE = "Reread exports complete";
/** ganesha reports a config it could not use after "Reread exports complete". */
const CONFIG_ERROR = /config_errs_to_log :CONFIG :CRIT :([^\n]*)/;
/** How long after a reload completes its config errors may still be logged. */
const CONFIG_ERRORS_GRACE_MS = 40;
const POLL_MS = 15;

export class GaneshaSupervisor {
  private readonly binary: string;
  private readonly rpcbindBinary: string;
  private readonly rpcbindSocket: string;
  private pid: number | undefined;
  /** Config writes and reloads run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly logger: Logger,
    private readonly options: GaneshaSupervisorOptions,
  ) {
    this.binary = options.binary ?? "ganesha.nfsd";
    this.rpcbindBinary = options.rpcbindBinary ?? "rpcbind";
    this.rpcbindSocket = options.rpcbindSocket ?? "/run/rpcbind.sock";
  }

  get configPath(): string {
    return join(this.options.dir, "ganesha.conf");
  }
  get logPath(): string {
    return join(this.options.dir, "ganesha.log");
  }
  get pidPath(): string {
    return join(this.options.dir, "ganesha.pid");
  }
  /** The rpcbind a supervisor over this dir started (kept across agent restarts). */
  private get rpcbindPidPath(): string {
    return join(this.options.dir, "rpcbind.pid");
  }

  /** The running ganesha's pid, if the supervisor has one. */
  get runningPid(): number | undefined {
    return this.pid;
  }

  /**
   * Writes `config` and makes a running ganesha use it: adopts the one named by the pidfile
   * (and reloads it) or starts a new one. Resolves once ganesha serves the config.
   */
  apply(config: string): Promise<void> {
    return this.serialize(async () => {
      await this.writeConfig(config);
      if (this.pid === undefined || !isGanesha(this.pid)) this.pid = await this.adoptFromPidfile();
      if (this.pid !== undefined) await this.reload(this.pid);
      else this.pid = await this.start();
    });
  }

  /**
   * Stops ganesha (SIGTERM, then SIGKILL), and with `rpcbind` also the rpcbind a supervisor
   * over this dir started, before or after an agent restart (one that was already running
   * is a host service and stays).
   */
  stop(options: { rpcbind?: boolean; timeoutMs?: number } = {}): Promise<void> {
    return this.serialize(async () => {
      const pid = this.pid ?? (await this.adoptFromPidfile());
      this.pid = undefined;
      if (pid !== undefined) await stopProcess(pid, "ganesha.nfsd", options.timeoutMs ?? 10_000);
      if (options.rpcbind) {
        const rpcbind = Number((await readFile(this.rpcbindPidPath, "utf8").catch(() => "")).trim());
        if (Number.isInteger(rpcbind) && rpcbind > 0) await stopProcess(rpcbind, "rpcbind", 5000);
        await rm(this.rpcbindPidPath, { force: true });
      }
    });
  }

  private serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private async writeConfig(config: string): Promise<void> {
    await mkdir(this.options.dir, { recursive: true });
    const tmp = `${this.configPath}.tmp`;
    await writeFile(tmp, config);
    await rename(tmp, this.configPath);
  }

  private async adoptFromPidfile(): Promise<number | undefined> {
    const text = await readFile(this.pidPath, "utf8").catch(() => "");
    const pid = Number(text.trim());
    return Number.isInteger(pid) && pid > 0 && isGanesha(pid) ? pid : undefined;
  }

  private async start(): Promise<number> {
    await this.ensureRpcbind();
    const from = await fileSize(this.logPath);
    const child = spawn(this.binary, ["-F", "-f", this.configPath, "-L", this.logPath, "-p", this.pidPath], {
      detached: true,
      stdio: "ignore",
    });
    child.unref();
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const exited = new Promise<string>((resolve) => child.once("exit", (c, s) => resolve(`exit ${c ?? s}`)));
    const ready = this.waitForLog(from, READY_LINE, this.options.startTimeoutMs ?? 20_000);
    const outcome = await Promise.race([
      ready.then(() => "ready"),
      spawnError.then((e) => `could not run ${this.binary}: ${e.message}`),
      exited.then((how) => `ganesha stopped at start (${how})`),
    ]);
    if (outcome !== "ready" || child.pid === undefined) {
      if (child.pid !== undefined) signal(child.pid, "SIGKILL");
      const tail = (await readFile(this.logPath, "utf8").catch(() => ""))
        .slice(from)
        .trim()
        .split("\n")
        .slice(-3);
      throw new WrennError("unavailable", `volume server: ${outcome}; log: ${tail.join(" | ")}`);
    }
    this.logger.info("volume server started", { pid: child.pid });
    return child.pid;
  }

  private async reload(pid: number): Promise<void> {
    const from = await fileSize(this.logPath);
    signal(pid, "SIGHUP");
    await this.waitForLog(from, RELOADED_LINE, this.options.reloadTimeoutMs ?? 10_000);
    await sleep(CONFIG_ERRORS_GRACE_MS);
    const failed = CONFIG_ERROR.exec(await readTail(this.logPath, from));
    if (failed) throw new WrennError("internal", `volume server rejected its config: ${failed[1]}`);
  }

  /** Resolves when `line` appears in the log after byte `from`. */
  private async waitForLog(from: number, line: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = await readTail(this.logPath, from);
      if (text.includes(line)) return;
      if (Date.now() > deadline) {
        throw new WrennError("unavailable", `volume server did not log "${line}" within ${timeoutMs} ms`);
      }
      await sleep(POLL_MS);
    }
  }

  private async ensureRpcbind(): Promise<void> {
    if (await socketAnswers(this.rpcbindSocket)) return;
    // Foreground (-f) and detached: it outlives the agent like ganesha, and stop() can end
    // the one this supervisor started. -w: warm start from saved registrations.
    const child = spawn(this.rpcbindBinary, ["-f", "-w"], { detached: true, stdio: "ignore" });
    child.unref();
    const failed = new Promise<boolean>((resolve) => {
      child.once("error", () => resolve(false));
      child.once("exit", () => resolve(false));
    });
    const up = waitForAsync(() => socketAnswers(this.rpcbindSocket), 5000);
    if (!(await Promise.race([up, failed])) || child.pid === undefined) {
      throw new WrennError("unavailable", `rpcbind did not come up at ${this.rpcbindSocket}`);
    }
    await writeFile(this.rpcbindPidPath, String(child.pid));
    this.logger.info("rpcbind started for the volume server", { pid: child.pid });
  }
}

async function stopProcess(pid: number, comm: string, timeoutMs: number): Promise<void> {
  if (!isLive(pid, comm)) return;
  signal(pid, "SIGTERM");
  if (!(await waitFor(() => !isLive(pid, comm), timeoutMs))) {
    signal(pid, "SIGKILL");
    await waitFor(() => !isLive(pid, comm), 5000);
  }
}

function isGanesha(pid: number): boolean {
  return isLive(pid, "ganesha.nfsd");
}

/** True while `pid` is a live (not zombie) process named `comm`; reads /proc/<pid>/stat. */
function isLive(pid: number, comm: string): boolean {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return false;
  }
  const m = /^\d+ \((.*)\) (\S)/.exec(text);
  return m?.[1] === comm && m[2] !== "Z";
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone.
  }
}

async function fileSize(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

async function readTail(path: string, from: number): Promise<string> {
  const file = await open(path, "r").catch(() => undefined);
  if (!file) return "";
  try {
    const { size } = await file.stat();
    if (size <= from) return "";
    const buf = Buffer.alloc(size - from);
    await file.read(buf, 0, buf.length, from);
    return buf.toString("utf8");
  } finally {
    await file.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
  return waitForAsync(async () => cond(), timeoutMs);
}

async function waitForAsync(cond: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await sleep(POLL_MS);
  }
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}
