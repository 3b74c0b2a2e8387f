import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { sh } from "./network-test-guest.js";

/**
 * The "outside world" of egress tests: a namespace `<prefix>-world` joined to the host by a veth
 * (`<prefix>-wh` on the host, the sandboxes' uplink in the test) in a /26 of 198.51.100.0/24
 * (TEST-NET-2; nothing leaves the machine), with servers on two addresses:
 * TCP `tcp <addr>` on 7000 (both), UDP echo `udp <msg>` on 7001, HTTP `http <Host>` on 80 and
 * HTTPS `tls <SNI>` on 443 (self-signed, for allowed.test) on the first.
 */
const WORLD_JS = `
const net = require("node:net"), dgram = require("node:dgram"), http = require("node:http"), fs = require("node:fs");
const [a1, a2, key, cert] = process.argv.slice(1);
let pending = 0; const up = () => { if (--pending === 0) process.stdout.write("listening\\n"); };
for (const a of [a1, a2]) { pending++; net.createServer((s) => s.end("tcp " + a + "\\n")).listen(7000, a, up); }
pending++; const u = dgram.createSocket("udp4"); u.on("message", (m, r) => u.send(Buffer.concat([Buffer.from("udp "), m]), r.port, r.address)); u.bind(7001, a1, up);
pending++; http.createServer((q, r) => r.end("http " + q.headers.host)).listen(80, a1, up);
pending++; require("node:https").createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (q, r) => r.end("tls " + q.socket.servername)).listen(443, a1, up);
`;

export interface EgressWorld {
  netns: string;
  /** The host end of the veth: the agent's uplink interface in the test. */
  hostLink: string;
  hostIp: string;
  a1: string;
  a2: string;
  stop(): Promise<void>;
}

function tryRun(file: string, args: string[]): void {
  try {
    execFileSync(file, args, { stdio: "ignore" });
  } catch {
    // already gone
  }
}

/** `base` is the /26's first address's last octet (0, 64, 128 or 192). */
export async function startEgressWorld(prefix: string, base: 0 | 64 | 128 | 192): Promise<EgressWorld> {
  const netns = `${prefix}-world`;
  const hostLink = `${prefix}-wh`;
  const worldLink = `${prefix}-ww`;
  const ip = (n: number) => `198.51.100.${base + n}`;
  const world = { netns, hostLink, hostIp: ip(1), a1: ip(2), a2: ip(3) };
  tryRun("ip", ["link", "del", hostLink]);
  tryRun("ip", ["netns", "del", netns]);
  const certDir = mkdtempSync(join(tmpdir(), `${prefix}-cert-`));
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child?.once("exit", resolve));
      child.kill("SIGKILL");
      await exited;
    }
    tryRun("ip", ["link", "del", hostLink]);
    tryRun("ip", ["netns", "del", netns]);
    rmSync(certDir, { recursive: true, force: true });
  };
  try {
    sh("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=allowed.test",
      "-keyout",
      join(certDir, "key.pem"),
      "-out",
      join(certDir, "cert.pem"),
    ]);
    sh(
      "ip",
      ["-batch", "-"],
      [
        `netns add ${netns}`,
        `link add ${hostLink} type veth peer name ${worldLink} netns ${netns}`,
        `addr add ${world.hostIp}/26 dev ${hostLink}`,
        `link set ${hostLink} up`,
        "",
      ].join("\n"),
    );
    sh(
      "ip",
      ["-n", netns, "-batch", "-"],
      [
        "link set lo up",
        `addr add ${world.a1}/26 dev ${worldLink}`,
        `addr add ${world.a2}/26 dev ${worldLink}`,
        `link set ${worldLink} up`,
        "",
      ].join("\n"),
    );
    const started = spawn(
      "ip",
      [
        "netns",
        "exec",
        netns,
        "node",
        "-e",
        WORLD_JS,
        world.a1,
        world.a2,
        join(certDir, "key.pem"),
        join(certDir, "cert.pem"),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child = started;
    await new Promise<void>((resolve, reject) => {
      let err = "";
      started.stdout?.on("data", (d: Buffer) => {
        if (d.toString().includes("listening")) resolve();
      });
      started.stderr?.on("data", (d: Buffer) => {
        err += d.toString();
      });
      started.on("exit", (code) => reject(new Error(`world servers exited (${code}): ${err}`)));
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { ...world, stop };
}
