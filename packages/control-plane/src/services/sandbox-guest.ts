import type { Readable } from "node:stream";
import type { ExecResult, GuestClient } from "@wrenn/guest-client";
import { WrennError } from "@wrenn/shared";
import type { Principal } from "../auth/principal.js";
import type { SandboxRow } from "../db/schema.js";
import { endpointOf } from "./host-endpoint.js";
import { auditSandbox, type SandboxAction } from "./sandbox-audit.js";
import type { ServiceDeps } from "./service-deps.js";

export interface ProcessInput {
  command: string;
  envs?: Record<string, string> | undefined;
  cwd?: string | undefined;
  user?: string | undefined;
}

export type { ExecResult };

/** A running sandbox's guest client, and the host it goes through (for error messages). */
export interface OpenGuest {
  guest: GuestClient;
  hostId: string;
}

/**
 * A guest failure as the API reports it. envd refusing the sandbox's own token, or a host
 * refusing ours, is the host's fault, not the caller's: `unavailable`, like a host that
 * cannot be reached.
 */
export function fromGuestError(err: unknown, hostId: string): WrennError {
  const e = WrennError.from(err);
  if (e.code === "unauthenticated" || e.code === "unavailable") {
    return new WrennError("unavailable", `host ${hostId} unavailable: ${e.message}`, { cause: err });
  }
  return e;
}

/** Yields a guest file's chunks, its failures mapped like every guest call's. */
async function* mappedChunks(stream: ReadableStream<Uint8Array>, hostId: string): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of stream) yield chunk;
  } catch (err) {
    throw fromGuestError(err, hostId);
  }
}

/**
 * Commands, processes and files of running sandboxes: envd's own protocol, sent to the
 * sandbox's host agent's traffic listener (which forwards it to the guest), with the
 * sandbox's envd access token. Each call checks the sandbox is running and is audited
 * as SandboxesService's operations are.
 */
export class SandboxGuest {
  constructor(
    private readonly deps: ServiceDeps,
    private readonly running: (principal: Principal, id: string) => Promise<SandboxRow>,
  ) {}

  /** The guest client of a running sandbox, for streams (exec, terminals) that outlive one call. */
  async open(row: SandboxRow): Promise<OpenGuest> {
    if (!row.host_id) throw new WrennError("unavailable", "sandbox has no host");
    const host = await this.deps.db
      .selectFrom("hosts")
      .select(["id", "state", "url", "agent_token", "traffic_port", "cert_pem", "cert_fingerprint"])
      .where("id", "=", row.host_id)
      .executeTakeFirst();
    if (!host) throw new WrennError("unavailable", `host ${row.host_id} is gone`);
    if (host.state !== "up") throw new WrennError("unavailable", `host ${host.id} is ${host.state}`);
    const guest = this.deps.hosts.guest(
      { ...endpointOf(host), trafficPort: host.traffic_port },
      { id: row.id, envdAccessToken: row.envd_access_token },
    );
    return { guest, hostId: host.id };
  }

  /** Runs `op` on the guest of a running sandbox of the caller's team, audited when `what` is given. */
  private async on<T>(
    principal: Principal,
    id: string,
    what: SandboxAction | undefined,
    op: (guest: GuestClient) => Promise<T>,
  ): Promise<T> {
    const row = await this.running(principal, id);
    const work = async () => {
      const { guest, hostId } = await this.open(row);
      try {
        return await op(guest);
      } catch (err) {
        throw fromGuestError(err, hostId);
      }
    };
    return what === undefined ? work() : auditSandbox(this.deps.audit, principal, id, what, work);
  }

  exec(
    principal: Principal,
    id: string,
    input: ProcessInput & { timeoutMs?: number | undefined; stdin?: Uint8Array | undefined },
  ): Promise<ExecResult> {
    return this.on(principal, id, "sandbox.exec", (guest) =>
      guest.exec(input, {
        ...(input.timeoutMs ? { timeoutMs: input.timeoutMs } : {}),
        ...(input.stdin && input.stdin.byteLength > 0 ? { stdin: input.stdin } : {}),
      }),
    );
  }

  async startProcess(principal: Principal, id: string, input: ProcessInput & { tag?: string | undefined }) {
    return {
      pid: await this.on(principal, id, "sandbox.process.start", (guest) =>
        guest.startBackground(input, input.tag || undefined),
      ),
    };
  }

  async listProcesses(principal: Principal, id: string) {
    const processes = await this.on(principal, id, undefined, (guest) => guest.list());
    return processes.map((p) => ({
      pid: p.pid,
      tag: p.tag ?? "",
      cmd: p.config?.cmd ?? "",
      args: p.config?.args ?? [],
      cwd: p.config?.cwd ?? "",
    }));
  }

  async killProcess(
    principal: Principal,
    id: string,
    selector: { pid: number } | { tag: string },
    signal?: string,
  ): Promise<void> {
    const name = signal || "SIGKILL";
    if (name !== "SIGKILL" && name !== "SIGTERM") {
      throw new WrennError("invalid_argument", `signal must be SIGTERM or SIGKILL, got ${name}`);
    }
    await this.on(principal, id, { action: "sandbox.process.kill", details: selector }, (guest) =>
      guest.signal(selector, name),
    );
  }

  /** Streams a request body into a file in the sandbox. */
  async writeFile(principal: Principal, id: string, path: string, user: string | undefined, body: Readable) {
    let size = 0;
    const counted = (async function* () {
      for await (const chunk of body) {
        const bytes = new Uint8Array(chunk as Buffer);
        size += bytes.byteLength;
        yield bytes;
      }
    })();
    const stream = ReadableStream.from(counted);
    const written = await this.on(
      principal,
      id,
      { action: "sandbox.file.write", details: { path } },
      (guest) => guest.writeFile(path, stream, user),
    );
    return { path: written, size: BigInt(size) };
  }

  /**
   * Opens a file in the sandbox as a stream of chunks. envd's answer (its status) is in
   * before this returns, so a missing file is an error response, not a truncated download.
   */
  async readFile(
    principal: Principal,
    id: string,
    path: string,
    user?: string,
  ): Promise<AsyncIterable<Uint8Array>> {
    const row = await this.running(principal, id);
    const { guest, hostId } = await this.open(row);
    let stream: ReadableStream<Uint8Array>;
    try {
      stream = await guest.readFile(path, user);
    } catch (err) {
      throw fromGuestError(err, hostId);
    }
    return mappedChunks(stream, hostId);
  }

  async listDir(principal: Principal, id: string, path: string, depth: number, user?: string) {
    const entries = await this.on(principal, id, undefined, (guest) => guest.listDir(path, depth, user));
    return entries.map((e) => ({
      name: e.name,
      path: e.path,
      type: e.type,
      size: e.size,
      mode: e.mode,
      owner: e.owner,
      modifiedAt: e.modifiedTime,
    }));
  }

  makeDir(principal: Principal, id: string, path: string, user?: string): Promise<boolean> {
    return this.on(principal, id, { action: "sandbox.file.mkdir", details: { path } }, (guest) =>
      guest.makeDir(path, user),
    );
  }

  async removePath(principal: Principal, id: string, path: string, user?: string): Promise<void> {
    await this.on(principal, id, { action: "sandbox.file.remove", details: { path } }, (guest) =>
      guest.remove(path, user),
    );
  }
}
