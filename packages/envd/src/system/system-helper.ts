import { type ChildProcessByStdio, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { type Logger, WrennError } from "@wrenn/shared";
import { SYSTEM_HELPER_SCRIPT } from "./system-helper-script.js";

export interface SystemHelperOptions {
  logger: Logger;
  /** How long one request may take before the helper is killed (and restarted on the next). */
  requestTimeoutMs: number;
  /** The interpreter; tests may name another perl. */
  perlPath?: string;
}

interface Waiter {
  resolve: (data: string) => void;
  reject: (err: WrennError) => void;
}

type HelperChild = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * Owns the resident system helper (see system-helper-script.ts): starts it, sends requests in
 * order, restarts it when it has died. Requests are answered in the order they were written,
 * so waiters form a FIFO queue.
 */
export class SystemHelper {
  private child: HelperChild | undefined;
  private waiters: Waiter[] = [];
  private closed = false;

  constructor(private readonly options: SystemHelperOptions) {}

  /** Starts the helper now (at boot, so it is resident in every snapshot) and checks it answers. */
  async start(): Promise<void> {
    await this.call("ping");
  }

  /** The process id of the running helper, if any (tests and logs). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Sets CLOCK_REALTIME to `epochMs`. */
  async setClock(epochMs: number): Promise<void> {
    const ms = Math.round(epochMs);
    const sec = Math.floor(ms / 1000);
    const nsec = (ms - sec * 1000) * 1_000_000;
    await this.call(`clock ${sec} ${nsec}`);
  }

  /** Credits `bytes` to the kernel's input pool and reseeds the CRNG from it. */
  async addEntropy(bytes: Buffer): Promise<void> {
    if (bytes.length === 0) return;
    await this.call(`entropy ${bytes.toString("hex")}`);
  }

  /** Stops the helper; later calls fail. */
  close(): void {
    this.closed = true;
    this.child?.kill("SIGKILL");
  }

  /**
   * One request; a helper found dead is restarted and the request sent once more. Resolves
   * with the text after "ok " (empty for requests that answer a bare "ok").
   */
  async call(line: string): Promise<string> {
    try {
      return await this.request(line);
    } catch (err) {
      if (!(err instanceof WrennError) || err.code !== "unavailable" || this.closed) throw err;
      this.options.logger.warn("system helper restarted", { err: err.message });
      return await this.request(line);
    }
  }

  private request(line: string): Promise<string> {
    if (this.closed) return Promise.reject(new WrennError("unavailable", "system helper closed"));
    const child = this.ensureChild();
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.failAll(new WrennError("deadline_exceeded", `system helper did not answer '${verb(line)}'`));
        child.kill("SIGKILL");
      }, this.options.requestTimeoutMs);
      this.waiters.push({
        resolve: (data) => {
          clearTimeout(timer);
          resolve(data);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      child.stdin.write(`${line}\n`);
    });
  }

  private ensureChild(): HelperChild {
    if (this.child) return this.child;
    const child = spawn(this.options.perlPath ?? "perl", ["-e", SYSTEM_HELPER_SCRIPT], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    this.child = child;
    const gone = (reason: string) => {
      if (this.child !== child) return;
      this.child = undefined;
      this.failAll(new WrennError("unavailable", `system helper ${reason}`));
    };
    child.on("error", (err) => gone(`failed: ${err.message}`));
    child.on("exit", (code, signal) => gone(`exited (code ${code}, signal ${signal})`));
    // A write to a helper that has just died fails with EPIPE; its exit rejects the waiter.
    child.stdin.on("error", () => {});
    createInterface({ input: child.stdout }).on("line", (answer) => this.answer(answer));
    createInterface({ input: child.stderr }).on("line", (text) =>
      this.options.logger.warn("system helper stderr", { text }),
    );
    this.options.logger.info("system helper started", { pid: child.pid });
    return child;
  }

  private answer(answer: string): void {
    const waiter = this.waiters.shift();
    if (!waiter) return;
    if (answer === "ok") waiter.resolve("");
    else if (answer.startsWith("ok ")) waiter.resolve(answer.slice(3));
    else waiter.reject(new WrennError("internal", `system helper: ${answer.replace(/^err /, "")}`));
  }

  private failAll(err: WrennError): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.reject(err);
  }
}

function verb(line: string): string {
  return line.split(" ", 1)[0] ?? "";
}
