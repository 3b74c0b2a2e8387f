import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { EntryType, FileType, type HostAgentService, SandboxState, TimeoutAction } from "@wrenn/proto";
import { toConnectError, WrennError } from "@wrenn/shared";
import type { ProcessStreamEvent, ProcessTarget } from "../envd-client/envd-client.js";
import type { SandboxManager } from "../sandbox/sandbox-manager.js";
import type { SandboxRecord, SandboxStateName } from "../sandbox/sandbox-record.js";
import type { SnapshotRecord } from "../sandbox/snapshot-store.js";
import { validateGuestPath } from "./guest-path.js";

export interface HostAgentInfo {
  version: string;
  hostId: string;
  vmm: string;
  accel: string;
  accelReason: string;
  capacity: { vcpus: number; memoryMiB: number; diskMiB: number };
  maxUnaryFileBytes: number;
  /** Port of the sandbox traffic listener (0: none). */
  trafficPort: number;
  listTemplates(): Promise<string[]>;
  /** Resident memory of a VMM process, 0 when unknown. */
  vmmRssBytes(pid: number | undefined): Promise<number>;
}

const STATE: Record<SandboxStateName, SandboxState> = {
  pending: SandboxState.PENDING,
  running: SandboxState.RUNNING,
  paused: SandboxState.PAUSED,
  stopped: SandboxState.STOPPED,
  error: SandboxState.ERROR,
};

function sandboxInfo(record: SandboxRecord, busy = false) {
  return {
    busy,
    sandboxId: record.id,
    template: record.image,
    state: STATE[record.state],
    resources: {
      vcpus: record.resources.vcpus,
      memoryMib: record.resources.memoryMiB,
      diskMib: record.resources.diskMiB,
    },
    createdAt: timestampFromDate(new Date(record.createdAt)),
    expiresAt: timestampFromDate(new Date(record.expiresAt)),
    timeoutSec: record.timeoutSec,
    timeoutAction: record.timeoutAction === "pause" ? TimeoutAction.PAUSE : TimeoutAction.DESTROY,
    metadata: record.metadata,
    hostIp: record.hostIp ?? "",
    slot: record.slot ?? 0,
    error: record.error ?? "",
    vmmPid: record.vmmPid ?? 0,
  };
}

function snapshotInfo(template: SnapshotRecord, dependents: string[]) {
  return {
    name: template.name,
    sourceSandboxId: template.sourceSandboxId,
    resources: {
      vcpus: template.resources.vcpus,
      memoryMib: template.resources.memoryMiB,
      diskMib: template.resources.diskMiB,
    },
    createdAt: timestampFromDate(new Date(template.createdAt)),
    dependents,
    baseTemplate: template.image,
  };
}

function requireId(id: string): string {
  if (!id) throw new WrennError("invalid_argument", "sandbox_id is required");
  return id;
}

function target(
  selector:
    | { selector: { case: "pid"; value: number } | { case: "tag"; value: string } | { case: undefined } }
    | undefined,
): ProcessTarget {
  const s = selector?.selector;
  if (s?.case === "pid") return { pid: s.value };
  if (s?.case === "tag") return { tag: s.value };
  throw new WrennError("invalid_argument", "process selector (pid or tag) is required");
}

function execEvent(event: ProcessStreamEvent) {
  switch (event.kind) {
    case "started":
      return { event: { case: "started" as const, value: { pid: event.pid } } };
    case "stdout":
    case "pty":
      return { event: { case: "stdout" as const, value: event.data } };
    case "stderr":
      return { event: { case: "stderr" as const, value: event.data } };
    case "exited":
      return {
        event: { case: "exited" as const, value: { exitCode: event.exitCode, error: event.error ?? "" } },
      };
  }
}

const ENTRY_TYPE: Record<FileType, EntryType> = {
  [FileType.UNSPECIFIED]: EntryType.UNSPECIFIED,
  [FileType.FILE]: EntryType.FILE,
  [FileType.DIRECTORY]: EntryType.DIRECTORY,
  [FileType.SYMLINK]: EntryType.SYMLINK,
};

/** Wraps every handler so a thrown WrennError leaves as a ConnectError carrying its code. */
function guard<A extends unknown[], R>(fn: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args: A) => {
    try {
      return await fn(...args);
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

function guardStream<A extends unknown[], R>(
  fn: (...args: A) => AsyncIterable<R>,
): (...args: A) => AsyncIterable<R> {
  return async function* (...args: A) {
    try {
      yield* fn(...args);
    } catch (err) {
      throw toConnectError(err);
    }
  };
}

/** The HostAgentService handlers: thin calls into the sandbox manager and each sandbox's envd. */
export function createHostAgentService(
  manager: SandboxManager,
  info: HostAgentInfo,
): ServiceImpl<typeof HostAgentService> {
  const maxUnary = info.maxUnaryFileBytes;

  return {
    ping: guard(async () => {
      const allocated = manager.allocated();
      return {
        version: info.version,
        hostId: info.hostId,
        vmm: info.vmm,
        accel: info.accel,
        accelReason: info.accelReason,
        capacity: {
          vcpus: info.capacity.vcpus,
          memoryMib: info.capacity.memoryMiB,
          diskMib: info.capacity.diskMiB,
        },
        allocated: { vcpus: allocated.vcpus, memoryMib: allocated.memoryMiB, diskMib: allocated.diskMiB },
        sandboxCount: manager.list().length,
        templates: await info.listTemplates(),
        maxUnaryFileBytes: BigInt(maxUnary),
        trafficPort: info.trafficPort,
      };
    }),

    createSandbox: guard(async (req) => {
      if (!req.template && !req.snapshot) {
        throw new WrennError("invalid_argument", "template or snapshot is required");
      }
      const record = await manager.create({
        sandboxId: req.sandboxId,
        image: req.template,
        snapshot: req.snapshot || undefined,
        resources: {
          vcpus: req.resources?.vcpus,
          memoryMiB: req.resources?.memoryMib,
          diskMiB: req.resources?.diskMib,
        },
        timeoutSec: req.timeoutSec,
        timeoutAction: req.timeoutAction === TimeoutAction.DESTROY ? "destroy" : "pause",
        envVars: req.envVars,
        envdAccessToken: req.envdAccessToken,
        metadata: req.metadata,
        defaultUser: req.defaultUser,
        defaultWorkdir: req.defaultWorkdir,
      });
      return { sandbox: sandboxInfo(record) };
    }),

    pauseSandbox: guard(async (req) => {
      const paused = await manager.pause(requireId(req.sandboxId));
      return {
        sandbox: sandboxInfo(paused.record),
        memoryBytesWritten: BigInt(paused.bytesWritten),
        generation: paused.generation,
      };
    }),

    resumeSandbox: guard(async (req) => ({
      sandbox: sandboxInfo(await manager.resume(requireId(req.sandboxId), req.timeoutSec || undefined)),
    })),

    createSnapshot: guard(async (req) => {
      if (!req.name) throw new WrennError("invalid_argument", "name is required");
      const { snapshot, record } = await manager.snapshots.create(requireId(req.sandboxId), req.name, {
        leavePaused: req.leavePaused,
      });
      return { snapshot: snapshotInfo(snapshot, [record.id]), sandbox: sandboxInfo(record) };
    }),

    deleteSnapshot: guard(async (req) => {
      if (!req.name) throw new WrennError("invalid_argument", "name is required");
      await manager.snapshots.delete(req.name, req.force);
      return {};
    }),

    listSnapshots: guard(async () => ({
      snapshots: manager.snapshots
        .list()
        .map(({ snapshot, dependents }) => snapshotInfo(snapshot, dependents)),
    })),

    forkSandbox: guard(async (req) => {
      const forks = await manager.snapshots.fork(
        requireId(req.sandboxId),
        req.count,
        req.metadata,
        req.envdAccessTokens,
      );
      return { sandboxes: forks.map((f) => sandboxInfo(f)) };
    }),

    destroySandbox: guard(async (req) => {
      await manager.destroy(requireId(req.sandboxId));
      return {};
    }),

    listSandboxes: guard(async () => ({
      sandboxes: manager.list().map((r) => sandboxInfo(r, manager.isBusy(r.id))),
    })),

    getSandbox: guard(async (req) => {
      const id = requireId(req.sandboxId);
      return { sandbox: sandboxInfo(manager.get(id), manager.isBusy(id)) };
    }),

    pingSandbox: guard(async (req) => ({
      sandbox: sandboxInfo(manager.ping(requireId(req.sandboxId), req.timeoutSec || undefined)),
    })),

    getSandboxMetrics: guard(async (req) => {
      const id = requireId(req.sandboxId);
      const m = await manager.envdFor(id).metrics();
      const num = (k: string) => (typeof m[k] === "number" ? (m[k] as number) : 0);
      return {
        cpuCount: num("cpu_count"),
        cpuUsedPct: num("cpu_used_pct"),
        memTotalBytes: BigInt(Math.round(num("mem_total"))),
        memUsedBytes: BigInt(Math.round(num("mem_used"))),
        diskTotalBytes: BigInt(Math.round(num("disk_total"))),
        diskUsedBytes: BigInt(Math.round(num("disk_used"))),
        vmmRssBytes: BigInt(await info.vmmRssBytes(manager.vmmPid(id))),
        timestamp: timestampFromDate(new Date()),
      };
    }),

    exec: guard(async (req) => {
      const envd = manager.envdFor(requireId(req.sandboxId));
      if (!req.process?.command) throw new WrennError("invalid_argument", "process.command is required");
      const result = await envd.exec(
        {
          command: req.process.command,
          envs: req.process.envs,
          cwd: req.process.cwd,
          user: req.process.user,
        },
        { timeoutMs: req.timeoutMs, ...(req.stdin.byteLength > 0 ? { stdin: req.stdin } : {}) },
      );
      return {
        exitCode: result.exitCode,
        stdout: result.stdout,
        stderr: result.stderr,
        error: result.error ?? "",
        pid: result.pid,
      };
    }),

    execStream: guardStream(async function* (req, ctx: HandlerContext) {
      const envd = manager.envdFor(requireId(req.sandboxId));
      if (!req.process?.command) throw new WrennError("invalid_argument", "process.command is required");
      const events = envd.start(
        {
          command: req.process.command,
          envs: req.process.envs,
          cwd: req.process.cwd,
          user: req.process.user,
        },
        { signal: ctx.signal, stdin: req.openStdin || req.stdin.length > 0 },
      );
      for await (const event of events) {
        yield execEvent(event);
        if (event.kind === "started" && req.stdin.length > 0) {
          await envd.sendInput({ pid: event.pid }, req.stdin, !req.openStdin);
        }
      }
    }),

    startBackground: guard(async (req) => {
      const envd = manager.envdFor(requireId(req.sandboxId));
      if (!req.process?.command) throw new WrennError("invalid_argument", "process.command is required");
      const abort = new AbortController();
      const events = envd.start(
        {
          command: req.process.command,
          envs: req.process.envs,
          cwd: req.process.cwd,
          user: req.process.user,
        },
        { signal: abort.signal, stdin: true, ...(req.tag ? { tag: req.tag } : {}) },
      );
      const first = await events.next();
      // The process keeps running in the guest; the agent stops following its output.
      abort.abort();
      events.return(undefined).catch(() => {});
      if (first.done || first.value.kind !== "started") {
        throw new WrennError("internal", "process did not report its start");
      }
      return { pid: first.value.pid };
    }),

    listProcesses: guard(async (req) => {
      const processes = await manager.envdFor(requireId(req.sandboxId)).list();
      return {
        processes: processes.map((p) => ({
          pid: p.pid,
          tag: p.tag ?? "",
          cmd: p.config?.cmd ?? "",
          args: p.config?.args ?? [],
          cwd: p.config?.cwd ?? "",
        })),
      };
    }),

    killProcess: guard(async (req) => {
      const signal = req.signal || "SIGKILL";
      if (signal !== "SIGKILL" && signal !== "SIGTERM") {
        throw new WrennError("invalid_argument", `signal must be SIGTERM or SIGKILL, got ${signal}`);
      }
      await manager.envdFor(requireId(req.sandboxId)).signal(target(req.process), signal);
      return {};
    }),

    connectProcess: guardStream(async function* (req, ctx: HandlerContext) {
      const envd = manager.envdFor(requireId(req.sandboxId));
      for await (const event of envd.connect(target(req.process), { signal: ctx.signal }))
        yield execEvent(event);
    }),

    sendProcessInput: guard(async (req) => {
      await manager
        .envdFor(requireId(req.sandboxId))
        .sendInput(target(req.process), req.data, req.closeStdin);
      return {};
    }),

    ptyAttach: guardStream(async function* (req, ctx: HandlerContext) {
      const envd = manager.envdFor(requireId(req.sandboxId));
      const cols = req.cols || 80;
      const rows = req.rows || 24;
      const events =
        req.pid === 0
          ? envd.start(
              {
                command: req.command || "exec /bin/bash -i -l",
                envs: { TERM: "xterm-256color", ...req.envs },
                cwd: req.cwd,
                user: req.user,
              },
              { signal: ctx.signal, stdin: true, pty: { cols, rows } },
            )
          : envd.connect({ pid: req.pid }, { signal: ctx.signal });
      for await (const event of events) {
        if (event.kind === "started")
          yield { event: { case: "started" as const, value: { pid: event.pid } } };
        else if (event.kind === "exited") {
          yield {
            event: { case: "exited" as const, value: { exitCode: event.exitCode, error: event.error ?? "" } },
          };
        } else yield { event: { case: "data" as const, value: event.data } };
      }
    }),

    ptyInput: guard(async (req) => {
      await manager.envdFor(requireId(req.sandboxId)).ptyInput(req.pid, req.data);
      return {};
    }),

    ptyResize: guard(async (req) => {
      if (!req.cols || !req.rows) throw new WrennError("invalid_argument", "cols and rows must be positive");
      await manager.envdFor(requireId(req.sandboxId)).ptyResize(req.pid, req.cols, req.rows);
      return {};
    }),

    ptyKill: guard(async (req) => {
      await manager.envdFor(requireId(req.sandboxId)).signal({ pid: req.pid }, "SIGKILL");
      return {};
    }),

    writeFile: guard(async (req) => {
      const envd = manager.envdFor(requireId(req.sandboxId));
      const path = validateGuestPath(req.path);
      if (req.data.byteLength > maxUnary) {
        throw new WrennError(
          "payload_too_large",
          `file is ${req.data.byteLength} bytes; WriteFile takes at most ${maxUnary}, use WriteFileStream`,
        );
      }
      await envd.writeFile(path, req.data, req.user || undefined);
      return { path, size: BigInt(req.data.byteLength) };
    }),

    writeFileStream: guard(async (requests, ctx: HandlerContext) => {
      const iterator = requests[Symbol.asyncIterator]();
      const first = await iterator.next();
      if (first.done || first.value.part.case !== "header") {
        throw new WrennError("invalid_argument", "the first message must be the header");
      }
      const header = first.value.part.value;
      const envd = manager.envdFor(requireId(header.sandboxId));
      const path = validateGuestPath(header.path);
      let size = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const next = await iterator.next();
          if (next.done) {
            controller.close();
            return;
          }
          if (next.value.part.case !== "chunk") {
            controller.error(new WrennError("invalid_argument", "only chunks may follow the header"));
            return;
          }
          size += next.value.part.value.byteLength;
          controller.enqueue(next.value.part.value);
        },
      });
      await envd.writeFile(path, body, header.user || undefined, ctx.signal);
      return { path, size: BigInt(size) };
    }),

    readFile: guard(async (req) => {
      const envd = manager.envdFor(requireId(req.sandboxId));
      const path = validateGuestPath(req.path);
      const stream = await envd.readFile(path, req.user || undefined);
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const chunk of stream) {
        total += chunk.byteLength;
        if (total > maxUnary) {
          await stream.cancel().catch(() => {});
          throw new WrennError(
            "payload_too_large",
            `file is larger than ${maxUnary} bytes; use ReadFileStream`,
          );
        }
        chunks.push(chunk);
      }
      return { data: Buffer.concat(chunks) };
    }),

    readFileStream: guardStream(async function* (req, ctx: HandlerContext) {
      const envd = manager.envdFor(requireId(req.sandboxId));
      const path = validateGuestPath(req.path);
      const stream = await envd.readFile(path, req.user || undefined, ctx.signal);
      for await (const chunk of stream) yield { chunk };
    }),

    listDir: guard(async (req) => {
      const envd = manager.envdFor(requireId(req.sandboxId));
      const entries = await envd.listDir(validateGuestPath(req.path), req.depth || 1, req.user || undefined);
      return {
        entries: entries.map((e) => ({
          name: e.name,
          path: e.path,
          type: ENTRY_TYPE[e.type],
          size: BigInt(e.size),
          mode: e.mode,
          owner: e.owner,
          ...(e.modifiedTime ? { modifiedAt: e.modifiedTime } : {}),
        })),
      };
    }),

    makeDir: guard(async (req) => {
      const created = await manager
        .envdFor(requireId(req.sandboxId))
        .makeDir(validateGuestPath(req.path), req.user || undefined);
      return { created };
    }),

    removePath: guard(async (req) => {
      await manager
        .envdFor(requireId(req.sandboxId))
        .remove(validateGuestPath(req.path), req.user || undefined);
      return {};
    }),
  };
}
