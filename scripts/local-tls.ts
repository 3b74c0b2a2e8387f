/**
 * A local certificate authority and a `<domain>` + `*.<domain>` server certificate signed
 * by it, for serving the control plane over TLS on one machine (`WRENN_SANDBOX_DOMAIN=…
 * make up`). Made with the openssl CLI; the CA is made once and kept, the server
 * certificate again whenever the domain changes or it is due to expire within 30 days.
 * Clients trust it with `NODE_EXTRA_CA_CERTS=<dir>/ca.crt`.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface LocalTls {
  /** The CA certificate clients trust. */
  caCertPath: string;
  /** Server certificate and key for the control plane's TLS listener. */
  certPath: string;
  keyPath: string;
  /** True when this call made a new server certificate. */
  issued: boolean;
}

const DOMAIN_RE = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;

async function openssl(args: string[]): Promise<void> {
  try {
    await run("openssl", args, { timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim()}`);
  }
}

async function validForDays(certPath: string, days: number): Promise<boolean> {
  try {
    await run("openssl", ["x509", "-in", certPath, "-noout", "-checkend", String(days * 86400)]);
    return true;
  } catch {
    return false;
  }
}

/** Makes (or reuses) the CA and the server certificate for `domain` under `dir`. */
export async function ensureLocalTls(dir: string, domain: string): Promise<LocalTls> {
  if (!DOMAIN_RE.test(domain)) {
    throw new Error(`"${domain}" is not a domain name with at least two labels (e.g. wrenn.localhost)`);
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const caKey = join(dir, "ca.key");
  const caCertPath = join(dir, "ca.crt");
  const keyPath = join(dir, "server.key");
  const certPath = join(dir, "server.crt");
  const domainPath = join(dir, "server.domain");

  if (!existsSync(caKey) || !existsSync(caCertPath) || !(await validForDays(caCertPath, 30))) {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      caKey,
      "-out",
      caCertPath,
      "-days",
      "3650",
      "-subj",
      "/CN=Wrenn local CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    rmSync(certPath, { force: true });
  }

  const current =
    existsSync(certPath) &&
    existsSync(keyPath) &&
    existsSync(domainPath) &&
    readFileSync(domainPath, "utf8").trim() === domain &&
    (await validForDays(certPath, 30));
  if (current) return { caCertPath, certPath, keyPath, issued: false };

  const csr = join(dir, "server.csr");
  const ext = join(dir, "server.ext");
  writeFileSync(
    ext,
    [
      `subjectAltName=DNS:${domain},DNS:*.${domain}`,
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "",
    ].join("\n"),
  );
  try {
    await openssl([
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      csr,
      "-subj",
      `/CN=${domain}`,
    ]);
    await openssl([
      "x509",
      "-req",
      "-in",
      csr,
      "-CA",
      caCertPath,
      "-CAkey",
      caKey,
      "-set_serial",
      `0x${Date.now().toString(16)}`,
      "-days",
      "397",
      "-extfile",
      ext,
      "-out",
      certPath,
    ]);
  } finally {
    rmSync(csr, { force: true });
    rmSync(ext, { force: true });
  }
  writeFileSync(domainPath, `${domain}\n`);
  return { caCertPath, certPath, keyPath, issued: true };
}
