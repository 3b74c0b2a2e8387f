import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { access, mkdir, readFile, rm } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { basename, join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import type { VmmCgroups, VmmLimits } from "../host-cgroups/vmm-cgroups.js";
import { bootProfile, type GuestAslr, MEMORY_BACKEND_ID, QEMU_RUN_FILES, qemuArgs } from "./qemu-command.js";
import { writeIncomingStream } from "./qemu-incoming-stream.js";
import { QemuVm } from "./qemu-vm.js";
import { QmpClient } from "./qmp-client.js";
import type { Accel, VmHandle, VmmDriver, VmRestoreSource, VmSpec } from "./vmm-driver.js";
import { readProcess } from "./vmm-process.js";

export { hostTscKhz, qemuVersion } from "./qemu-command.js";

export interface QemuDriverOptions {
  /** From the accel probe; the driver does not decide it. */
  accel: Accel;
  qemuBinary: string;
  /** Host TSC rate; passed to TCG guests as tsc_early_khz (without it ~22 % of boots hang). */
  tscKhz: number | undefined;
  /** TCG translation cache in MiB; QEMU's default reserves 1 GiB (see the agent config's tcgTbSizeMiB). */
  tcgTbSizeMiB: number;
  /** Guest address space randomisation; "auto": off under TCG (see driverKernelArgs). */
  guestAslr: GuestAslr;
  /** Memory the VMM itself may use beyond guest RAM, added to its cgroup limit (see defaultVmmOverheadMiB). */
  vmmOverheadMiB: number;
  cgroups: VmmCgroups;
  logger: Logger;
  /** Enters a sandbox's network namespace before exec (util-linux nsenter; the pid stays QEMU's). */
  nsenterBinary?: string;
  /** Where named network namespaces live (`ip netns add`). */
  netnsDir?: string;
  /** Budget for QEMU to come up and answer QMP after spawn. */
  startTimeoutMs?: number;
  /** stop(): time QEMU gets to quit before SIGKILL. */
  stopTimeoutMs?: number;
  /** How often an adopted VMM (not our child) is checked for exit. */
  exitPollMs?: number;
}

/**
 * VMM memory beyond guest RAM, measured here with a 512 MiB TCG guest that touched all its
 * RAM: anon = guest + TB cache + ~53 MiB, plus ~24 MiB of QEMU's own file pages.
 */
export function defaultVmmOverheadMiB(accel: Accel, tcgTbSizeMiB: number): number {
  return accel === "kvm" ? 96 : tcgTbSizeMiB + 96;
}

// Joins the sandbox's cgroups before exec, so QEMU never runs (or allocates) outside them.
// Arguments: <cgroup.procs file>... -- <command>...
const LAUNCHER = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"';
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/**
 * Runs sandboxes as `qemu-system-x86_64 -M microvm` processes: inside the sandbox's
 * network namespace (nsenter, so the tracked pid is QEMU's own), inside the sandbox's host
 * cgroup from before exec, detached in their own session with no pipes to the agent (an
 * agent restart leaves them running for adopt()), one QMP socket each.
 */
export class QemuDriver implements VmmDriver {
  readonly name = "qemu" as const;

  constructor(private readonly options: QemuDriverOptions) {}

  get accel(): Accel {
    return this.options.accel;
  }

  get bootProfile(): string {
    return bootProfile(this.options);
  }

  /** The full QEMU argument list for a spec (for tests, logs and the snapshot work). */
  commandLine(spec: VmSpec): string[] {
    return qemuArgs(spec, this.options);
  }

  private limits(spec: VmSpec): VmmLimits {
    return {
      memoryBytes: (spec.memoryMiB + this.options.vmmOverheadMiB) * 1024 * 1024,
      vcpus: spec.vcpus,
    };
  }

  boot(spec: VmSpec): Promise<VmHandle> {
    return this.launch(spec, false);
  }

  async restore(spec: VmSpec, source: VmRestoreSource): Promise<VmHandle> {
    const restoreSpec: VmSpec = { ...spec, memoryFile: { path: source.memoryFile, share: false } };
    const vm = await this.launch(restoreSpec, true);
    try {
      const socketPath = join(spec.runDir, QEMU_RUN_FILES.incomingSocket);
      await rm(socketPath, { force: true });
      await vm.monitor.execute("migrate-incoming", { uri: `unix:${socketPath}` });
      const socket = await connectWhenListening(socketPath, 10_000);
      try {
        await writeIncomingStream(socket, {
          ramBlockId: MEMORY_BACKEND_ID,
          ramSizeBytes: spec.memoryMiB * 1024 * 1024,
          pages: source.pages(),
          deviceStateFile: source.deviceStateFile,
        });
      } finally {
        socket.end();
      }
      await waitIncomingDone(vm, 60_000);
      await rm(socketPath, { force: true });
      return vm;
    } catch (err) {
      const exitedOnItsOwn = await Promise.race([
        vm.exited.then((e) => !e.expected),
        new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
      ]);
      await vm.kill();
      if (exitedOnItsOwn) {
        const tail = (await readFile(join(spec.runDir, QEMU_RUN_FILES.vmmLog), "utf8").catch(() => ""))
          .trim()
          .split("\n")
          .slice(-3)
          .join(" | ");
        const why = err instanceof Error ? err.message : String(err);
        throw new WrennError(
          "snapshot_corrupt",
          `QEMU could not load the snapshot: ${tail || "it exited"} (${why})`,
          {
            cause: err,
          },
        );
      }
      throw WrennError.from(err);
    }
  }

  private async launch(spec: VmSpec, incoming: boolean): Promise<QemuVm> {
    checkSpec(spec);
    const o = this.options;
    const netnsPath = spec.network ? join(o.netnsDir ?? "/run/netns", spec.network.netnsName) : undefined;
    if (netnsPath) {
      await access(netnsPath).catch(() => {
        throw new WrennError("failed_precondition", `network namespace ${netnsPath} does not exist`);
      });
    }
    await mkdir(spec.runDir, { recursive: true });
    const qmpPath = join(spec.runDir, QEMU_RUN_FILES.qmpSocket);
    const pidPath = join(spec.runDir, QEMU_RUN_FILES.pidFile);
    const logPath = join(spec.runDir, QEMU_RUN_FILES.vmmLog);
    await rm(qmpPath, { force: true });
    await rm(pidPath, { force: true });

    const procsFiles = await o.cgroups.prepare(spec.id, this.limits(spec));
    const command = [
      ...(netnsPath ? [o.nsenterBinary ?? "nsenter", `--net=${netnsPath}`, "--"] : []),
      o.qemuBinary,
      ...qemuArgs(spec, o, incoming),
    ];
    const logFd = openSync(logPath, "a");
    let child: ChildProcess;
    try {
      // Detached (own session and process group), stdio to a file: never a pipe QEMU could block on.
      child = spawn("/bin/sh", ["-c", LAUNCHER, "wrenn-vmm", ...procsFiles, "--", ...command], {
        detached: true,
        stdio: ["ignore", logFd, logFd],
        // One malloc arena: QEMU's threads would each get their own, and every arena keeps
        // freed memory of its own; a sandbox's VMM allocates little after start.
        env: { ...process.env, MALLOC_ARENA_MAX: "1" },
      });
    } finally {
      closeSync(logFd);
    }
    child.unref();
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const pid = child.pid;
    const log = o.logger.child({ sandbox: spec.id });

    const startFailed = new AbortController();
    const exitedEarly = new Promise<never>((_, reject) => {
      const fail = async (why: string) => {
        const tail = (await readFile(logPath, "utf8").catch(() => ""))
          .trim()
          .split("\n")
          .slice(-4)
          .join(" | ");
        // Reject before aborting the QMP wait, so the race reports QEMU's own error.
        reject(new WrennError("internal", `QEMU failed to start (${why})${tail ? `: ${tail}` : ""}`));
        startFailed.abort();
      };
      child.once("exit", (code, signal) => void fail(signal ? `killed by ${signal}` : `exit ${code}`));
      spawnError.then((err) => fail(err.message));
    });
    exitedEarly.catch(() => {});

    try {
      if (pid === undefined) throw await spawnError;
      const connecting = QmpClient.connect(qmpPath, {
        timeoutMs: o.startTimeoutMs ?? 15_000,
        signal: startFailed.signal,
      }).catch(async (err: unknown) => {
        // QEMU may bind the socket and then die; its own error (with its log) says more than QMP's.
        const exitError = await Promise.race([
          exitedEarly.then(
            () => undefined,
            (e: unknown) => e,
          ),
          new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000)),
        ]);
        throw exitError ?? err;
      });
      const qmp = await Promise.race([connecting, exitedEarly]);
      try {
        // The launcher execs nsenter which execs QEMU: the pid must be QEMU's own.
        const written = Number((await readFile(pidPath, "utf8").catch(() => "")).trim());
        const identity = await readProcess(pid);
        if (written !== pid || !identity || !isQemuCommand(identity.argv, spec.runDir)) {
          throw new WrennError(
            "internal",
            `VMM pid ${pid} is not QEMU (pid file says ${written || "nothing"})`,
          );
        }
        const vm = new QemuVm({
          id: spec.id,
          memoryBytes: spec.memoryMiB * 1024 * 1024,
          memoryFile: spec.memoryFile?.path,
          pid,
          accel: o.accel,
          runDir: spec.runDir,
          qmp,
          identity,
          child,
          exitPollMs: o.exitPollMs ?? 200,
          stopTimeoutMs: o.stopTimeoutMs ?? 5000,
          cleanup: () => this.removeCgroup(spec.id),
          logger: log,
        });
        log.info("VMM started", { pid, accel: o.accel, vcpus: spec.vcpus, memoryMiB: spec.memoryMiB });
        return vm;
      } catch (err) {
        await qmp.close();
        throw err;
      }
    } catch (err) {
      if (pid !== undefined && child.exitCode === null && child.signalCode === null) {
        const gone = new Promise((resolve) => child.once("exit", resolve));
        try {
          process.kill(pid, "SIGKILL");
        } catch {}
        await gone;
      }
      await this.removeCgroup(spec.id);
      throw WrennError.from(err);
    }
  }

  async adopt(spec: VmSpec, pid: number): Promise<VmHandle | null> {
    checkSpec(spec);
    const log = this.options.logger.child({ sandbox: spec.id, pid });
    const identity = await readProcess(pid);
    if (!identity || !isQemuCommand(identity.argv, spec.runDir)) {
      log.info("not adopting: pid is gone or not this sandbox's QEMU");
      return null;
    }
    const pidPath = join(spec.runDir, QEMU_RUN_FILES.pidFile);
    const written = Number((await readFile(pidPath, "utf8").catch(() => "")).trim());
    if (written && written !== pid) {
      log.warn("not adopting: pid file names another process", { written });
      return null;
    }
    const accelArg = identity.argv[identity.argv.indexOf("-accel") + 1] ?? "";
    const accel: Accel = accelArg.startsWith("kvm") ? "kvm" : "tcg";
    // A group lost while the agent was away (host cleanup) is recreated around the VMM.
    if (!(await this.options.cgroups.pids(spec.id)).includes(pid)) {
      await this.options.cgroups.place(spec.id, pid, this.limits(spec));
    }
    let qmp: QmpClient;
    try {
      qmp = await QmpClient.connect(join(spec.runDir, QEMU_RUN_FILES.qmpSocket), { timeoutMs: 5000 });
    } catch (err) {
      log.warn("cannot reattach to VMM's QMP socket", { err });
      return null;
    }
    log.info("VMM adopted", { accel });
    return new QemuVm({
      id: spec.id,
      memoryBytes: spec.memoryMiB * 1024 * 1024,
      memoryFile: memoryFileOf(identity.argv),
      pid,
      accel,
      runDir: spec.runDir,
      qmp,
      identity,
      child: undefined,
      exitPollMs: this.options.exitPollMs ?? 200,
      stopTimeoutMs: this.options.stopTimeoutMs ?? 5000,
      cleanup: () => this.removeCgroup(spec.id),
      logger: log,
    });
  }

  private async removeCgroup(id: string): Promise<void> {
    await this.options.cgroups.remove(id);
  }
}

/** The mem-path of an adopted QEMU's RAM backend (a restored VM maps its snapshot's base file). */
function memoryFileOf(argv: readonly string[]): string | undefined {
  const backend = argv.find((a) => a.startsWith("memory-backend-file,"));
  const path = backend ? /(?:^|,)mem-path=((?:[^,]|,,)*)/.exec(backend)?.[1] : undefined;
  return path?.replaceAll(",,", ",");
}

/** Connects to QEMU's incoming-migration socket once it listens. */
async function connectWhenListening(path: string, timeoutMs: number): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await new Promise((resolve, reject) => {
        const socket = connect(path);
        socket.once("connect", () => {
          socket.off("error", reject);
          resolve(socket);
        });
        socket.once("error", reject);
      });
    } catch (err) {
      if (Date.now() > deadline) {
        throw new WrennError("internal", "QEMU never listened for the incoming snapshot", { cause: err });
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

/** Waits until QEMU has loaded the incoming stream; fails with QEMU's reason. */
async function waitIncomingDone(vm: QemuVm, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await vm.monitor.execute<{ status?: string }>("query-status");
    if (status.status !== "inmigrate") {
      const migration = await vm.monitor.execute<{ status?: string; "error-desc"?: string }>("query-migrate");
      if (migration.status === "failed") {
        throw new WrennError(
          "snapshot_corrupt",
          `QEMU could not load the snapshot: ${migration["error-desc"] ?? "unknown"}`,
        );
      }
      if (status.status === "paused" || status.status === "prelaunch") return;
      throw new WrennError("internal", `QEMU is ${status.status} after loading the snapshot`);
    }
    if (Date.now() > deadline)
      throw new WrennError("deadline_exceeded", "loading the snapshot took too long");
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** True when argv is a QEMU started for this run dir (its pid file lives there). */
function isQemuCommand(argv: readonly string[], runDir: string): boolean {
  const exe = basename(argv[0] ?? "");
  const pidArg = argv[argv.indexOf("-pidfile") + 1];
  return exe.startsWith("qemu-system") && pidArg === join(runDir, QEMU_RUN_FILES.pidFile);
}

function checkSpec(spec: VmSpec): void {
  if (!ID_RE.test(spec.id)) throw new WrennError("invalid_argument", `VM id "${spec.id}" is not valid`);
  if (!Number.isInteger(spec.vcpus) || spec.vcpus < 1) {
    throw new WrennError("invalid_argument", `vcpus must be a whole number ≥ 1, got ${spec.vcpus}`);
  }
  if (!Number.isInteger(spec.memoryMiB) || spec.memoryMiB < 1) {
    throw new WrennError("invalid_argument", `memoryMiB must be a whole number ≥ 1, got ${spec.memoryMiB}`);
  }
}
