/**
 * `make up` / `wrenn up`: one local Wrenn: a host agent and the control plane (embedded
 * PGlite under $WRENN_DIR/cp) with the agent registered to it. Prints the API URL and a key
 * and writes them to $WRENN_DIR/credentials.env. Ctrl-C stops both; the agent destroys its
 * sandboxes on the way out (no VM, namespace or process is left).
 *
 * It serves both ways at once: plain http (E2B_API_URL/E2B_SANDBOX_URL) and, for the sandbox
 * domain (WRENN_SANDBOX_DOMAIN, default `wrenn.localhost`; `none` turns it off), TLS
 * (WRENN_CP_TLS_PORT, default 443) for `api.<domain>` and `<port>-<id>.<domain>` with a
 * certificate from a local CA made under $WRENN_DIR/tls (unless WRENN_CP_TLS_CERT/KEY name
 * one). `*.localhost` resolves to this machine offline (setup enables glibc's myhostname
 * module), so the e2b SDK's E2B_DOMAIN / NODE_EXTRA_CA_CERTS lines are all a client needs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { lookup } from "node:dns/promises";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { ensureLocalTls } from "./local-tls.js";

const repoRoot = resolve(import.meta.dirname, "..");
const wrennDir = process.env.WRENN_DIR || join(homedir(), ".wrenn");
const credentialsPath = join(wrennDir, "credentials.env");
const logDir = join(wrennDir, "logs");
const agentPort = Number(process.env.WRENN_AGENT_PORT || 50051);
const cpPort = Number(process.env.WRENN_CP_PORT || 8080);
const DEFAULT_SANDBOX_DOMAIN = "wrenn.localhost";
const domainSetting = process.env.WRENN_SANDBOX_DOMAIN ?? DEFAULT_SANDBOX_DOMAIN;
const sandboxDomain = domainSetting === "none" ? "" : domainSetting || DEFAULT_SANDBOX_DOMAIN;
const tlsPort = Number(process.env.WRENN_CP_TLS_PORT || 443);
const tsx = join(repoRoot, "node_modules/.bin/tsx");

function step(message: string): void {
  process.stderr.write(`\x1b[1m==> ${message}\x1b[0m\n`);
}

function info(message: string): void {
  process.stderr.write(`    ${message}\n`);
}

function readEnvFile(path: string): Record<string, string> {
  if (!existsSync(path)) return {};
  const out: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1]) out[m[1]] = m[2] ?? "";
  }
  return out;
}

function agentToken(): string {
  const path = join(wrennDir, "agent-token");
  if (!existsSync(path) || readFileSync(path, "utf8").trim().length < 16) {
    writeFileSync(path, randomBytes(24).toString("hex"), { mode: 0o600 });
  }
  return readFileSync(path, "utf8").trim();
}

/** Starts a service and resolves once it prints `<name> listening on <url-or-port>`. */
function startService(
  label: string,
  logName: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  /** Lines of its output after `ready` that the user should see (progress of background work). */
  relay?: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  // Plain node (no tsx wrapper between us and the service), in its own process group and
  // logging to a file, not to us: a terminal's Ctrl-C reaches only this script, which
  // stops the services one at a time with a single SIGTERM each and waits, so the agent
  // is never interrupted mid-cleanup, even if this script dies first.
  const logPath = join(logDir, `${logName}.log`);
  mkdirSync(logDir, { recursive: true });
  const logFd = openSync(logPath, "a");
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", logFd],
    detached: true,
  });
  closeSync(logFd);
  info(`${label} log: ${logPath}`);
  return new Promise((resolveReady, reject) => {
    let out = "";
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = ready.exec(out);
      if (match) {
        child.stdout?.off("data", onData);
        let rest = out.slice(match.index + match[0].length);
        const relayLines = (chunk: string) => {
          rest += chunk;
          const lines = rest.split("\n");
          rest = lines.pop() ?? "";
          for (const line of lines) if (relay?.test(line)) info(line.replace(/^wrenn-agent /, ""));
        };
        child.stdout?.on("data", (d: Buffer) => relayLines(d.toString()));
        relayLines("");
        resolveReady({ child, match });
      }
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => {
      const tail = readFileSync(logPath, "utf8").slice(-4000);
      reject(new Error(`${label} exited (${code}) before it was ready; the end of ${logPath}:\n${tail}`));
    });
  });
}

async function api<T>(
  url: string,
  path: string,
  key: string | undefined,
  init: RequestInit = {},
): Promise<T> {
  const res = await fetch(`${url}${path}`, {
    ...init,
    headers: {
      "content-type": "application/json",
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(init.headers as Record<string, string>),
    },
  });
  const body = (await res.json().catch(() => ({}))) as T & { error?: { code: string; message: string } };
  if (!res.ok) throw new Error(`${init.method ?? "GET"} ${path}: ${body.error?.code} ${body.error?.message}`);
  return body;
}

/** Runs one of the control plane's one-shot commands; its stdout, or throws with its stderr. */
async function controlPlaneCommand(
  args: string[],
  cpEnv: NodeJS.ProcessEnv,
): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(tsx, ["packages/control-plane/src/main.ts", ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...cpEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", r));
  return { code, out, err };
}

interface FirstCredentials {
  key: string;
  /** The dashboard's first user and password: set only on the run that made it (printed once). */
  adminUser: { email: string; password: string } | null;
}

const adminUserOf = (out: string): FirstCredentials["adminUser"] => {
  const email = /^admin user (\S+)$/m.exec(out)?.[1];
  const password = /^admin password (\S+)$/m.exec(out)?.[1];
  return email && password ? { email, password } : null;
};

/**
 * The first API key: bootstrapped once, kept in credentials.env after that. The admin
 * team's first user comes with it (or, on an install made before accounts, on the next run).
 */
async function ensureFirstCredentials(cpEnv: NodeJS.ProcessEnv): Promise<FirstCredentials> {
  const known = readEnvFile(credentialsPath).WRENN_API_KEY;
  if (known) {
    const made = await controlPlaneCommand(["admin-user"], cpEnv);
    if (made.code !== 0) throw new Error(`admin user check failed: ${made.err.trim() || made.out.trim()}`);
    return { key: known, adminUser: adminUserOf(made.out) };
  }
  step("creating the admin team, its first API key and user");
  const { code, out, err } = await controlPlaneCommand(["bootstrap"], cpEnv);
  const key = /^api key (\S+)$/m.exec(out)?.[1];
  if (code !== 0 || !key) {
    throw new Error(
      `bootstrap failed: ${err.trim() || out.trim()}\n` +
        `hint: the database under ${join(wrennDir, "cp")} already has an admin team but ${credentialsPath} lost its key;` +
        " run `wrenn admin reset-password --new-api-key` (or remove that directory to start fresh)",
    );
  }
  return { key, adminUser: adminUserOf(out) };
}

async function registerAgent(cpUrl: string, key: string, agentUrl: string, token: string): Promise<void> {
  const hosts = await api<{ items?: Array<{ url?: string; state?: string }> }>(cpUrl, "/v1/hosts", key);
  if (hosts.items?.some((h) => h.url === agentUrl)) {
    info(`host agent ${agentUrl} already registered`);
    return;
  }
  const created = await api<{ registration_token?: string; token?: string }>(cpUrl, "/v1/hosts", key, {
    method: "POST",
    body: JSON.stringify({ name: "local", shared: true }),
  });
  const registration = created.registration_token ?? created.token;
  await api(cpUrl, "/v1/hosts/register", undefined, {
    method: "POST",
    body: JSON.stringify({ token: registration, url: agentUrl, agent_token: token }),
  });
  info(`host agent ${agentUrl} registered`);
}

/**
 * What NODE_EXTRA_CA_CERTS should name: the local CA, or, when this shell already trusts
 * extra certificates that way, a bundle of those and the local CA (one variable, one file).
 */
function trustFile(caCertPath: string): string {
  const already = process.env.NODE_EXTRA_CA_CERTS;
  if (!already || already === caCertPath || !existsSync(already)) return caCertPath;
  const bundle = join(wrennDir, "tls", "trust.pem");
  writeFileSync(bundle, `${readFileSync(already, "utf8").trimEnd()}\n${readFileSync(caCertPath, "utf8")}`);
  return bundle;
}

/** Whether `<port>-<id>.<domain>` names already resolve to this machine (no resolver hint needed). */
async function resolvesLocally(domain: string): Promise<boolean> {
  try {
    const found = await lookup(`49983-probe.${domain}`, { all: true });
    return found.some((a) => a.address === "127.0.0.1" || a.address === "::1");
  } catch {
    return false;
  }
}

/** The e2b SDK over TLS with E2B_DOMAIN, as it talks to e2b.app. */
async function domainInstructions(key: string, caCertPath: string, port: number): Promise<string> {
  const domain = port === 443 ? sandboxDomain : `${sandboxDomain}:${port}`;
  const resolver = join(repoRoot, "scripts/resolve-local-domain.mjs");
  const resolves = await resolvesLocally(sandboxDomain);
  return (
    `\nFor the stock e2b SDK over TLS (https://api.${domain}, https://<port>-<id>.${domain}):\n` +
    `  export E2B_DOMAIN=${domain} E2B_API_KEY=${key}\n` +
    (caCertPath ? `  export NODE_EXTRA_CA_CERTS=${trustFile(caCertPath)}\n` : "") +
    (resolves
      ? ""
      : `  *.${sandboxDomain} must resolve to this machine: a wildcard DNS record, dnsmasq\n` +
        `  (address=/${sandboxDomain}/127.0.0.1), or for Node programs here:\n` +
        `  export NODE_OPTIONS=--import=${resolver}\n`)
  );
}

async function main(): Promise<void> {
  mkdirSync(wrennDir, { recursive: true });
  const token = agentToken();
  const children: ChildProcess[] = [];
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    step("stopping (the agent destroys its sandboxes)");
    for (const child of [...children].reverse()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await exited;
    }
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stop(0));

  try {
    step(`starting the host agent on 127.0.0.1:${agentPort}`);
    const agent = await startService(
      "host agent",
      "agent",
      ["packages/host-agent/src/main.ts", "serve"],
      {
        WRENN_AGENT_TOKEN: token,
        WRENN_AGENT_PORT: String(agentPort),
        WRENN_AGENT_DESTROY_ON_EXIT: "1",
        // Volumes need nfs-ganesha (setup.sh installs it); without it they stay off.
        WRENN_VOLUMES: process.env.WRENN_VOLUMES ?? (existsSync("/usr/bin/ganesha.nfsd") ? "1" : "0"),
      },
      /wrenn-agent listening on (\d+)/,
      /^wrenn-agent .*image snapshot/,
    );
    children.push(agent.child);
    const agentUrl = `http://127.0.0.1:${agent.match[1]}`;

    const cpEnv: NodeJS.ProcessEnv = { WRENN_CP_PORT: String(cpPort), WRENN_DIR: wrennDir };
    let caCertPath = "";
    if (sandboxDomain) {
      let cert = process.env.WRENN_CP_TLS_CERT ?? "";
      let key = process.env.WRENN_CP_TLS_KEY ?? "";
      if (!cert || !key) {
        step(`TLS for ${sandboxDomain} and *.${sandboxDomain} (local CA under ${join(wrennDir, "tls")})`);
        const tls = await ensureLocalTls(join(wrennDir, "tls"), sandboxDomain);
        info(tls.issued ? `issued ${tls.certPath}` : `reusing ${tls.certPath}`);
        ({ certPath: cert, keyPath: key, caCertPath } = tls);
      }
      Object.assign(cpEnv, {
        WRENN_SANDBOX_DOMAIN: sandboxDomain,
        WRENN_CP_TLS_CERT: cert,
        WRENN_CP_TLS_KEY: key,
        WRENN_CP_TLS_PORT: String(tlsPort),
      });
    }
    const { key, adminUser } = await ensureFirstCredentials(cpEnv);
    step(`starting the control plane on 127.0.0.1:${cpPort} (embedded PGlite under ${join(wrennDir, "cp")})`);
    const cp = await startService(
      "control plane",
      "control-plane",
      ["packages/control-plane/src/main.ts", "serve"],
      cpEnv,
      /(?:wrenn-cp tls listening on (\S+)\n)?wrenn-cp listening on (\S+)/,
    );
    children.push(cp.child);
    const cpUrl = cp.match[2] ?? `http://127.0.0.1:${cpPort}`;
    const tlsPortBound = cp.match[1] ? Number(new URL(cp.match[1]).port || 443) : tlsPort;
    await registerAgent(cpUrl, key, agentUrl, token);

    // The sandbox traffic proxy shares the API's listener (header routing), so it is the same URL.
    const lines = [`WRENN_API_URL=${cpUrl}`, `WRENN_API_KEY=${key}`, `WRENN_SANDBOX_URL=${cpUrl}`];
    writeFileSync(credentialsPath, `${lines.join("\n")}\n`, { mode: 0o600 });
    chmodSync(credentialsPath, 0o600);
    process.stdout.write(
      `\nWrenn is up.\n  Dashboard: ${cpUrl}/\n  ${lines.join("\n  ")}\n  (also in ${credentialsPath})\n` +
        `\nFor the stock e2b SDK (plain http):\n  export E2B_API_URL=${cpUrl} E2B_SANDBOX_URL=${cpUrl} E2B_VOLUME_API_URL=${cpUrl} E2B_API_KEY=${key}\n` +
        (sandboxDomain ? await domainInstructions(key, caCertPath, tlsPortBound) : "") +
        (adminUser
          ? `\nDashboard sign-in at ${cpUrl}/ (shown this once; \`wrenn admin reset-password\` sets a new one):\n` +
            `  email ${adminUser.email}\n  password ${adminUser.password}\n`
          : "") +
        "\nCtrl-C stops it.\n",
    );
    for (const child of children) {
      child.once("exit", (code) => {
        if (!stopping) {
          process.stderr.write(`a Wrenn process exited (${code}); stopping the rest\n`);
          void stop(1);
        }
      });
    }
  } catch (err) {
    process.stderr.write(`error: ${(err as Error).message}\n`);
    await stop(1);
  }
}

await main();
