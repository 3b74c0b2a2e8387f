import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type Logger, WrennError } from "@wrenn/shared";
import { EnvdClient, type EnvdInit } from "../envd-client/envd-client.js";
import { ENVD_PORT } from "../network/sandbox-network.js";
import { VM_RUN_FILES, type VmHandle } from "../vmm/vmm-driver.js";
import type { SandboxRecord } from "./sandbox-record.js";

export interface EnvdConnectorOptions {
  /** How long a starting guest may take to answer /health (and to take its /init). */
  readyTimeoutMs: number;
  pollIntervalMs: number;
  /** Per unary envd request. */
  requestTimeoutMs: number;
  port: number | undefined;
  logger: Logger;
  now: () => Date;
}

/** Reaches a starting sandbox's envd: waits for it to answer, then hands it the sandbox's settings. */
export class EnvdConnector {
  constructor(private readonly options: EnvdConnectorOptions) {}

  /** A client of the sandbox's envd at its host-reachable address, presenting `token`. */
  client(record: SandboxRecord, token = record.envdAccessToken): EnvdClient {
    return new EnvdClient({
      baseUrl: `http://${record.hostIp}:${this.options.port ?? ENVD_PORT}`,
      accessToken: token,
      requestTimeoutMs: this.options.requestTimeoutMs,
    });
  }

  /** Waits for envd's /health, failing fast (with the console's last lines) if the VMM dies first. */
  async waitReady(envd: EnvdClient, vm: VmHandle, record: SandboxRecord): Promise<void> {
    const abort = new AbortController();
    const died = vm.exited.then(async (exit) => {
      abort.abort();
      const tail = await consoleTail(record);
      throw new WrennError(
        "internal",
        `VMM exited during boot (code ${exit.code}, signal ${exit.signal})${tail ? `; console: ${tail}` : ""}`,
      );
    });
    try {
      await Promise.race([
        envd.waitHealthy({
          timeoutMs: this.options.readyTimeoutMs,
          intervalMs: this.options.pollIntervalMs,
          signal: abort.signal,
        }),
        died,
      ]);
    } catch (err) {
      if (err instanceof WrennError && err.code === "deadline_exceeded") {
        const tail = await consoleTail(record);
        throw new WrennError("deadline_exceeded", `${err.message}${tail ? `; console: ${tail}` : ""}`);
      }
      throw err;
    } finally {
      abort.abort();
      died.catch(() => {});
    }
  }

  /**
   * Sends envd /init until it lands or `readyTimeoutMs` passes: a guest starved of CPU (many
   * VMs starting on few cores) can miss one request's deadline. `first` presents the token the
   * guest holds now (a clone's: its snapshot's); once an earlier attempt has landed the guest
   * answers 401 to it, and `own`'s token finishes the job (/init is idempotent). Every attempt
   * goes over `own`'s connection (the one /health used), presenting `first`'s token.
   */
  async init(
    first: EnvdClient,
    own: EnvdClient,
    record: SandboxRecord,
    restored: boolean,
    vm?: VmHandle,
  ): Promise<void> {
    const deadline = Date.now() + this.options.readyTimeoutMs;
    let token = first.accessToken;
    let exited = false;
    vm?.exited.then(() => {
      exited = true;
    });
    let attempt = 0;
    for (;;) {
      if (exited) {
        const tail = await consoleTail(record);
        throw new WrennError(
          "internal",
          `VMM exited before envd took /init${tail ? `; console: ${tail}` : ""}`,
        );
      }
      try {
        await own.init(this.payload(record, restored), token);
        return;
      } catch (err) {
        const error = WrennError.from(err);
        if (error.code === "unauthenticated" && token !== own.accessToken) {
          token = own.accessToken;
          continue;
        }
        if (error.code !== "unavailable" || Date.now() >= deadline) throw err;
        // A guest just restored may take a moment to answer: retry quickly at first.
        attempt++;
        if (attempt % 20 === 0)
          this.options.logger.warn("envd init retried", { sandbox: record.id, attempt, err: error.message });
        await new Promise((r) => setTimeout(r, attempt < 50 ? this.options.pollIntervalMs : 200));
      }
    }
  }

  /** What /init carries: env, token, user, workdir, host time, and fresh entropy after a restore. */
  payload(record: SandboxRecord, restored: boolean): EnvdInit {
    return {
      envVars: record.envVars,
      accessToken: record.envdAccessToken,
      defaultUser: record.defaultUser,
      defaultWorkdir: record.defaultWorkdir || undefined,
      timestamp: this.options.now(),
      entropy: restored ? randomBytes(64) : undefined,
    };
  }
}

async function consoleTail(record: SandboxRecord): Promise<string> {
  const text = await readFile(join(record.runDir, VM_RUN_FILES.console), "utf8").catch(() => "");
  return text.trim().split("\n").slice(-5).join(" | ").slice(-600);
}
