import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, realpath } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ApiClient, getHealth, WrennConfigError } from "@wrenn/sdk";
import { resolveConnection } from "@wrenn/sdk/node";
import { AGENT_MAIN, REPO_ROOT } from "../repo-paths.js";
import { diskUseDirs, formatDiskUse, measureDiskUse } from "./disk-use.js";

const run = promisify(execFile);

export type CheckStatus = "ok" | "warn" | "fail";

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** Numbers behind the detail, for --json (the disk-use check's bytes per class). */
  data?: unknown;
}

async function checkNode(): Promise<DoctorCheck> {
  const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
  const ok = major > 20 || (major === 20 && minor >= 18);
  return {
    name: "node",
    status: ok ? "ok" : "fail",
    detail: `v${process.versions.node}${ok ? "" : " (need ≥ 20.18)"}`,
  };
}

async function checkQemu(): Promise<DoctorCheck> {
  try {
    const { stdout } = await run("qemu-system-x86_64", ["--version"]);
    return { name: "qemu", status: "ok", detail: stdout.split("\n")[0] ?? "" };
  } catch {
    return {
      name: "qemu",
      status: "fail",
      detail: "qemu-system-x86_64 not found (apt-get install qemu-system-x86)",
    };
  }
}

/** Asks the host agent's own probe whether KVM really runs a vCPU here, else TCG. */
async function checkAccel(): Promise<DoctorCheck> {
  try {
    const { stdout } = await run(join(REPO_ROOT, "node_modules/.bin/tsx"), [AGENT_MAIN, "probe-accel"], {
      timeout: 60_000,
    });
    const verdict = JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as {
      accel?: string;
      reason?: string;
    };
    return {
      name: "accel",
      status: verdict.accel === "kvm" ? "ok" : "warn",
      detail: `${verdict.accel ?? "unknown"}: ${verdict.reason ?? ""}`,
    };
  } catch (err) {
    return {
      name: "accel",
      status: "fail",
      detail: `probe failed: ${(err as Error).message.split("\n")[0]}`,
    };
  }
}

async function checkCgroups(): Promise<DoctorCheck> {
  const v2 = existsSync("/sys/fs/cgroup/cgroup.controllers");
  return { name: "cgroups", status: "ok", detail: v2 ? "v2 (unified)" : "v1 (per-controller hierarchies)" };
}

async function checkAptPackages(): Promise<DoctorCheck> {
  try {
    const { stdout } = await run("bash", [
      "-c",
      `source ${JSON.stringify(join(REPO_ROOT, "scripts/lib.sh"))}; missing_apt_packages "\${WRENN_APT_PACKAGES[@]}"`,
    ]);
    const missing = stdout.split("\n").filter(Boolean);
    return {
      name: "apt packages",
      status: missing.length === 0 ? "ok" : "fail",
      detail: missing.length === 0 ? "all installed" : `missing: ${missing.join(" ")} (run make up)`,
    };
  } catch (err) {
    return { name: "apt packages", status: "fail", detail: (err as Error).message };
  }
}

async function checkImages(wrennDir: string): Promise<DoctorCheck> {
  const imagesDir = join(wrennDir, "images");
  const names = await readdir(imagesDir).catch(() => [] as string[]);
  const found: string[] = [];
  for (const name of names) {
    const current = await realpath(join(imagesDir, name, "current")).catch(() => "");
    if (!current) continue;
    const manifest = await readFile(join(current, "manifest.json"), "utf8").catch(() => "");
    const hash = manifest ? ((JSON.parse(manifest) as { hash?: string }).hash ?? "") : "";
    found.push(`${name}${hash ? `@${hash.slice(0, 12)}` : ""}`);
  }
  return {
    name: "guest images",
    status: found.length > 0 ? "ok" : "warn",
    detail: found.length > 0 ? found.join(", ") : `none under ${imagesDir} (run wrenn image build)`,
  };
}

/** Disk used here by images, template snapshots, step caches, snapshots and template files. */
async function checkDiskUse(env: Record<string, string | undefined>): Promise<DoctorCheck> {
  const dirs = diskUseDirs(env);
  try {
    const use = await measureDiskUse(dirs);
    return { name: "disk use", status: "ok", detail: formatDiskUse(use), data: { dirs, use } };
  } catch (err) {
    return { name: "disk use", status: "warn", detail: `cannot measure: ${(err as Error).message}` };
  }
}

/** Whether the configured API answers and accepts the configured key (skipped when none is set). */
export async function checkApi(env: Record<string, string | undefined>): Promise<DoctorCheck> {
  let connection: Awaited<ReturnType<typeof resolveConnection>>;
  try {
    connection = await resolveConnection({ timeoutMs: 5000 }, env);
  } catch (err) {
    if (err instanceof WrennConfigError) {
      return { name: "api", status: "warn", detail: `not configured: ${err.message}` };
    }
    throw err;
  }
  try {
    const health = await getHealth(connection.apiUrl, { timeoutMs: 5000 });
    await new ApiClient(connection).json("GET", "/v1/teams");
    const up = health.hosts.filter((h) => h.state === "up").length;
    return {
      name: "api",
      status: up > 0 ? "ok" : "warn",
      detail: `${connection.apiUrl} v${health.version}, key accepted, ${up}/${health.hosts.length} hosts up`,
    };
  } catch (err) {
    const code = (err as { code?: string }).code;
    return {
      name: "api",
      status: "fail",
      detail: `${connection.apiUrl}: ${code ? `[${code}] ` : ""}${(err as Error).message}`,
    };
  }
}

export async function runDoctor(env: NodeJS.ProcessEnv): Promise<DoctorCheck[]> {
  const wrennDir = env.WRENN_DIR || join(homedir(), ".wrenn");
  return Promise.all([
    checkNode(),
    checkQemu(),
    checkAccel(),
    checkCgroups(),
    checkAptPackages(),
    checkImages(wrennDir),
    checkDiskUse(env),
    checkApi(env),
  ]);
}

export function formatDoctor(checks: DoctorCheck[]): string {
  const mark: Record<CheckStatus, string> = { ok: "✓", warn: "!", fail: "✗" };
  return checks.map((c) => `${mark[c.status]} ${c.name.padEnd(13)} ${c.detail}`).join("\n");
}
