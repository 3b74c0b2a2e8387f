import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { connect } from "node:net";
import { GUEST_GATEWAY_IP, GUEST_IP, GUEST_MAC, TAP_NAME } from "../src/network/sandbox-network.js";

/**
 * Stand-ins for a VM in network tests. A "guest" is a network namespace with its own TAP
 * (169.254.0.21, GUEST_MAC, default via 169.254.0.22); a small relay process holds the
 * sandbox's real TAP and the guest's TAP open and copies Ethernet frames between them, which
 * is what QEMU's virtio-net does with the TAP. So the production TAP path is what is tested.
 */

const RELAY_PY = `
import ctypes, fcntl, os, select, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454ca
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
def open_tap(ns, name):
    nsfd = os.open("/run/netns/" + ns, os.O_RDONLY)
    if libc.setns(nsfd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns " + ns)
    os.close(nsfd)
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd
a = open_tap(sys.argv[1], sys.argv[2])
b = open_tap(sys.argv[3], sys.argv[4])
print("ready", flush=True)
peer = {a: b, b: a}
while True:
    for fd in select.select([a, b], [], [])[0]:
        try:
            os.write(peer[fd], os.read(fd, 65536))
        except OSError:
            pass
`;

/** A TCP server: answers each connection with `<label> <peer address>` and closes. */
const SERVER_JS = `
const net = require("node:net");
const [host, port, label] = process.argv.slice(1);
const server = net.createServer((s) => { s.end(label + " " + s.remoteAddress + "\\n"); });
server.listen(Number(port), host, () => process.stdout.write("listening\\n"));
`;

/** A TCP client: prints {"ok":true,"data":...} or {"ok":false,"error":...} as JSON. */
const CLIENT_JS = `
const net = require("node:net");
const [host, port, timeoutMs, localAddress] = process.argv.slice(1);
const s = net.connect({ host, port: Number(port), ...(localAddress ? { localAddress } : {}) });
let data = "";
const done = (r) => { process.stdout.write(JSON.stringify(r)); process.exit(0); };
s.setTimeout(Number(timeoutMs), () => done({ ok: false, error: "timeout" }));
s.on("data", (d) => { data += d; });
s.on("end", () => done({ ok: true, data: data.trim() }));
s.on("error", (e) => done({ ok: false, error: e.code || e.message }));
`;

export type ConnectResult = { ok: true; data: string } | { ok: false; error: string };

function waitForLine(child: ChildProcess, line: string, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`${what} did not start: ${err}`)), 10_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${err}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGKILL");
  await exited;
}

export function sh(file: string, args: string[], input?: string): string {
  return execFileSync(file, args, { encoding: "utf8", ...(input !== undefined ? { input } : {}) });
}

/** Runs a TCP server in a network namespace (or on the host when netns is undefined). */
export async function startServer(netns: string | undefined, host: string, port: number, label: string) {
  const argv = ["node", "-e", SERVER_JS, host, String(port), label];
  const child = netns
    ? spawn("ip", ["netns", "exec", netns, ...argv], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(argv[0] as string, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  await waitForLine(child, "listening", `server ${label}`);
  return { stop: () => stopChild(child) };
}

/** Connects from inside a namespace (or from the host when netns is undefined). */
export function connectFrom(
  netns: string | undefined,
  host: string,
  port: number,
  options: { timeoutMs?: number; localAddress?: string } = {},
): Promise<ConnectResult> {
  const timeoutMs = options.timeoutMs ?? 1500;
  if (!netns) {
    return new Promise((resolve) => {
      const s = connect({
        host,
        port,
        ...(options.localAddress ? { localAddress: options.localAddress } : {}),
      });
      let data = "";
      const done = (r: ConnectResult) => {
        s.destroy();
        resolve(r);
      };
      s.setTimeout(timeoutMs, () => done({ ok: false, error: "timeout" }));
      s.on("data", (d: Buffer) => {
        data += d.toString();
      });
      s.on("end", () => done({ ok: true, data: data.trim() }));
      s.on("error", (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }));
    });
  }
  const args = ["netns", "exec", netns, "node", "-e", CLIENT_JS, host, String(port), String(timeoutMs)];
  if (options.localAddress) args.push(options.localAddress);
  return new Promise((resolve, reject) => {
    execFile("ip", args, { timeout: timeoutMs + 10_000, encoding: "utf8" }, (err, stdout, stderr) => {
      if (err) reject(new Error(`client in ${netns} failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout) as ConnectResult);
    });
  });
}

export interface TestGuest {
  netns: string;
  stop(): Promise<void>;
}

/** Creates the guest namespace and the relay onto the sandbox namespace's TAP. */
export async function startTestGuest(
  sandboxNetns: string,
  guestNetns: string,
  mtu: number,
): Promise<TestGuest> {
  sh("ip", ["netns", "add", guestNetns]);
  let relay: ChildProcess | undefined;
  try {
    sh(
      "ip",
      ["-n", guestNetns, "-batch", "-"],
      [
        "link set lo up",
        "tuntap add dev gtap0 mode tap",
        `link set gtap0 address ${GUEST_MAC} mtu ${mtu} up`,
        `addr add ${GUEST_IP}/30 dev gtap0`,
        `route add default via ${GUEST_GATEWAY_IP} dev gtap0`,
        "",
      ].join("\n"),
    );
    relay = spawn("python3", ["-c", RELAY_PY, sandboxNetns, TAP_NAME, guestNetns, "gtap0"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    await waitForLine(relay, "ready", "frame relay");
  } catch (err) {
    if (relay) await stopChild(relay);
    sh("ip", ["netns", "del", guestNetns]);
    throw err;
  }
  const child = relay;
  return {
    netns: guestNetns,
    async stop() {
      await stopChild(child);
      execFileSync("ip", ["netns", "del", guestNetns], { stdio: "ignore" });
    },
  };
}
