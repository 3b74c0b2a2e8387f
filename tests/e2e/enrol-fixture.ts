import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { IMAGES_DIR } from "./agent-fixture.js";

/** Network names and slots of the enrolment test's agents (tests/sweep-test-leftovers.ts sweeps "wen"). */
export const ENROL_NET_PREFIX = "wen";
const FIRST_SLOT = 6300;
const REPO = resolve(import.meta.dirname, "../..");

/** A real `wrenn-agent` process (enrolling, enrolled, or refused) started with `args` (e.g. `--register <token>`). */
export interface AgentRun {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | null>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
}

export function runAgent(dataDir: string, port: number, args: string[]): AgentRun {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(REPO, "packages/host-agent/src/main.ts"), ...args],
    {
      cwd: REPO,
      env: {
        ...process.env,
        WRENN_AGENT_DATA_DIR: dataDir,
        WRENN_IMAGES_DIR: IMAGES_DIR,
        WRENN_AGENT_PORT: String(port),
        WRENN_NET_PREFIX: ENROL_NET_PREFIX,
        WRENN_FIRST_SLOT: String(FIRST_SLOT),
        WRENN_MAX_SLOTS: "8",
        WRENN_AGENT_HEARTBEAT_MS: "400",
        WRENN_AGENT_DESTROY_ON_EXIT: "1",
        // The agent's RPC token comes from its identity.
        WRENN_AGENT_TOKEN: undefined,
      },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  child.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return {
    child,
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === "object" && address ? address.port : 0;
}

export function newCertInto(dir: string): void {
  execFileSync(
    "openssl",
    [
      ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
      ...[
        "-keyout",
        join(dir, "agent.key"),
        "-out",
        join(dir, "agent.crt"),
        "-days",
        "1",
        "-subj",
        "/CN=impostor",
      ],
      ...["-addext", "subjectAltName=IP:127.0.0.1"],
    ],
    { stdio: "ignore" },
  );
}
