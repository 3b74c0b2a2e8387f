import { execFile } from "node:child_process";
import { randomBytes, X509Certificate } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { WrennError } from "@wrenn/shared";

const run = promisify(execFile);

/**
 * An enrolling agent's identity, made once under `<dataDir>/identity/` (files mode 0600):
 * an EC P-256 key with a self-signed certificate naming the advertise host (the control
 * plane pins its fingerprint at enrolment), and the random token every RPC must carry.
 */
export interface AgentIdentity {
  dir: string;
  keyPath: string;
  certPath: string;
  certPem: string;
  /** sha256 fingerprint, as the control plane pins it. */
  fingerprint: string;
  agentToken: string;
}

export function identityDirOf(dataDir: string): string {
  return join(dataDir, "identity");
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 60_000 });
  } catch (err) {
    const e = err as { code?: string; stderr?: string; message: string };
    const why = e.code === "ENOENT" ? "openssl is not installed" : (e.stderr ?? e.message).trim();
    throw new WrennError("failed_precondition", `making the agent certificate failed: ${why}`, {
      cause: err,
    });
  }
}

/** Writes a file whole (temp file + rename), readable by its owner only. */
export function writePrivateFile(path: string, content: string): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, content, { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}

function load(dir: string): AgentIdentity {
  const keyPath = join(dir, "agent.key");
  const certPath = join(dir, "agent.crt");
  const certPem = readFileSync(certPath, "utf8");
  return {
    dir,
    keyPath,
    certPath,
    certPem,
    fingerprint: new X509Certificate(certPem).fingerprint256,
    agentToken: readFileSync(join(dir, "agent-token"), "utf8").trim(),
  };
}

/**
 * The agent's identity: loaded when it exists, made otherwise. An existing one is kept even
 * if the advertise host changed, since the control plane pinned it; enrol again with a new
 * data dir (or a removed identity) to change it.
 */
export async function ensureAgentIdentity(dataDir: string, advertiseHost: string): Promise<AgentIdentity> {
  const dir = identityDirOf(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const complete = ["agent.key", "agent.crt", "agent-token"].every((f) => existsSync(join(dir, f)));
  if (complete) return load(dir);
  const keyTemp = join(dir, `agent.key.${process.pid}.tmp`);
  const certTemp = join(dir, `agent.crt.${process.pid}.tmp`);
  const host = advertiseHost.replace(/^\[(.*)\]$/, "$1");
  const san = isIP(host) ? `IP:${host}` : `DNS:${host}`;
  try {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyTemp,
      "-out",
      certTemp,
      "-days",
      "3650",
      "-subj",
      `/CN=wrenn-agent ${host}`,
      "-addext",
      `subjectAltName=${san}`,
      "-addext",
      "basicConstraints=critical,CA:FALSE",
      "-addext",
      "keyUsage=critical,digitalSignature",
      "-addext",
      "extendedKeyUsage=serverAuth",
    ]);
    chmodSync(keyTemp, 0o600);
    chmodSync(certTemp, 0o600);
    writePrivateFile(join(dir, "agent-token"), `${randomBytes(32).toString("hex")}\n`);
    renameSync(certTemp, join(dir, "agent.crt"));
    // The key last: its presence is what says the identity is complete.
    renameSync(keyTemp, join(dir, "agent.key"));
  } finally {
    rmSync(keyTemp, { force: true });
    rmSync(certTemp, { force: true });
  }
  return load(dir);
}
