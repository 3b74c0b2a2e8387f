import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Sandbox } from "e2b";

/** The SDK's envd version in debug mode: every feature gate open. */
const DEBUG_ENVD_VERSION = "99.99.99";

export interface TestUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/**
 * Makes sure the unprivileged account "user" (E2B's default) exists. Tests run as root;
 * the account is created with `useradd -m -s /bin/bash user` only when missing, so this
 * is idempotent and leaves an existing account untouched.
 */
export function ensureTestUser(name = "user"): TestUser {
  if (spawnSync("id", ["-u", name]).status !== 0) execFileSync("useradd", ["-m", "-s", "/bin/bash", name]);
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith(`${name}:`));
  const [, , uid, gid, , home] = (line ?? "").split(":");
  return { name, uid: Number(uid), gid: Number(gid), home: home ?? `/home/${name}` };
}

/**
 * A stock SDK Sandbox that knows envd's access token from the start, as it does for a
 * secure sandbox: every request (RPC and /files) carries X-Access-Token, and
 * uploadUrl/downloadUrl are signed with it.
 */
export function connectSdkWithToken(url: string, accessToken: string): Sandbox {
  return new Sandbox({
    sandboxId: "debug_sandbox_id",
    envdVersion: DEBUG_ENVD_VERSION,
    envdAccessToken: accessToken,
    debug: true,
    sandboxUrl: url,
  });
}

/** inotify watches held by this process (envd runs in-process in the fixture). */
export function inotifyWatchCount(): number {
  let count = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    let target: string;
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue;
    }
    if (!target.includes("inotify")) continue;
    const info = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
    count += info.split("\n").filter((l) => l.startsWith("inotify wd:")).length;
  }
  return count;
}

export interface EnvdChild {
  pid: number;
  url: string;
  /** Resident set size of the envd process now, in bytes. */
  rssBytes(): number;
  stop(): Promise<void>;
}

/**
 * Runs envd as its own process (node --import tsx, so the pid is envd itself and its
 * memory can be read from /proc/<pid>/status).
 */
export async function startEnvdChild(): Promise<EnvdChild> {
  const main = fileURLToPath(new URL("../src/main.ts", import.meta.url));
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", main, "--no-vm", "--port", "0", "--host", "127.0.0.1"],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error("envd child did not start");
  child.stderr?.resume();
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`envd did not start: ${out}`)), 30_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const match = /envd listening on (\d+)/.exec(out);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`envd exited with ${code}: ${out}`));
    });
  });
  return {
    pid,
    url: `http://127.0.0.1:${port}`,
    rssBytes() {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      const kib = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
      if (kib === undefined) throw new Error(`no VmRSS for envd pid ${pid}`);
      return Number(kib) * 1024;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
