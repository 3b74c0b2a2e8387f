import { readdirSync, readFileSync } from "node:fs";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Process, type ProcessEvent } from "@wrenn/proto";

export type ProcessClient = Client<typeof Process>;

/** A plain Connect client for envd's process service (what the SDK does, minus its guards). */
export function createProcessClient(baseUrl: string, useBinaryFormat = false): ProcessClient {
  return createClient(Process, createConnectTransport({ baseUrl, httpVersion: "1.1", useBinaryFormat }));
}

/** `Authorization` header naming a Linux user, as the e2b SDK sends it. */
export function userHeader(name: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${name}:`).toString("base64")}` };
}

/** The Connect error code a promise rejects with (undefined when it resolves). */
export async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  const outcome = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return (outcome as { code?: number } | undefined)?.code;
}

/** Drains a server stream, rejecting with its error. */
export async function drain(stream: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of stream) {
    // only the end (or the error) matters
  }
}

export interface CollectedEvents {
  pid: number | undefined;
  stdout: Buffer;
  stderr: Buffer;
  pty: Buffer;
  keepalives: number;
  end: Extract<ProcessEvent["event"], { case: "end" }>["value"] | undefined;
  /** Event kinds in arrival order, for ordering checks. */
  order: string[];
}

/** Reads a Start/Connect stream to its end and sorts what arrived. */
export async function collect(stream: AsyncIterable<{ event?: ProcessEvent }>): Promise<CollectedEvents> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const pty: Buffer[] = [];
  const result: CollectedEvents = {
    pid: undefined,
    stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0),
    pty: Buffer.alloc(0),
    keepalives: 0,
    end: undefined,
    order: [],
  };
  for await (const res of stream) {
    const e = res.event?.event;
    if (!e?.case) continue;
    result.order.push(e.case);
    if (e.case === "start") result.pid = e.value.pid;
    else if (e.case === "keepalive") result.keepalives++;
    else if (e.case === "end") result.end = e.value;
    else if (e.case === "data") {
      const o = e.value.output;
      if (o.case === "stdout") out.push(Buffer.from(o.value));
      else if (o.case === "stderr") err.push(Buffer.from(o.value));
      else if (o.case === "pty") pty.push(Buffer.from(o.value));
    }
  }
  result.stdout = Buffer.concat(out);
  result.stderr = Buffer.concat(err);
  result.pty = Buffer.concat(pty);
  return result;
}

export function processExists(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // A zombie has exited; only its parent's reaping is pending.
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Pids of live processes whose argv is exactly `argv` (for cleaning up what a test started). */
export function pidsWithArgv(argv: string[]): number[] {
  const wanted = `${argv.join("\0")}\0`;
  return readdirSync("/proc")
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, "utf8") === wanted;
      } catch {
        return false;
      }
    })
    .map(Number);
}

export async function waitFor(check: () => boolean, timeoutMs = 5000, stepMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
