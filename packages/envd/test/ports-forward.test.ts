import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { connect, createServer, type Server } from "node:net";
import { createSilentLogger } from "@wrenn/shared";
import { afterEach, describe, expect, it } from "vitest";
import { createNoopCgroupManager } from "../src/cgroups/noop-cgroup-manager.js";
import { createPortSubsystem } from "../src/ports/create-port-subsystem.js";
import type { PortSubsystem } from "../src/ports/port-subsystem.js";

/*
 * The forward host is 127.0.0.2: a second loopback address that a socket bound to
 * 127.0.0.1 does not answer on (checked in the first test), so reaching a server there
 * proves the forwarder works without touching any real interface.
 */
const FORWARD_HOST = "127.0.0.2";
const SCAN_MS = 50;

interface ProcInfo {
  pid: number;
  ppid: number;
  cmdline: string[];
}

function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The comm field may hold spaces; ppid is the second field after its closing ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmdline = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").filter(Boolean);
      out.push({ pid: Number(name), ppid, cmdline });
    } catch {
      // exited while being read
    }
  }
  return out;
}

/** Every socat (forked connection children included) listening for `port` on the forward host. */
function socatsFor(port: number): ProcInfo[] {
  const arg = `TCP4-LISTEN:${port},bind=${FORWARD_HOST},reuseaddr,fork`;
  return listProcesses().filter((p) => p.cmdline.includes(arg));
}

function socatChildrenOfThisProcess(): ProcInfo[] {
  return listProcesses().filter((p) => p.ppid === process.pid && p.cmdline[0] === "socat");
}

/** The text a server sends before closing, or the connect error's code. */
function fetchText(host: string, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      text += d;
    });
    socket.on("end", () => resolve(text));
    socket.on("error", (err: NodeJS.ErrnoException) => resolve(`error:${err.code}`));
  });
}

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function listen(host: string, port = 0, reply = "hello"): Promise<Server> {
  const server = createServer((socket) => {
    // A socat killed mid-connection resets it: that is expected here, not a test failure.
    socket.on("error", () => {});
    socket.end(reply);
  });
  server.listen(port, host);
  await once(server, "listening");
  return server;
}

const portOf = (server: Server) => (server.address() as { port: number }).port;

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe("port subsystem (real socat)", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    expect(socatChildrenOfThisProcess()).toEqual([]);
  });

  function subsystem(
    ports: number[],
    pace: { idleScanIntervalMs?: number; quietAfterMs?: number } = {},
  ): PortSubsystem {
    const s = createPortSubsystem({
      logger: createSilentLogger(),
      scanIntervalMs: SCAN_MS,
      ...pace,
      forwardHost: FORWARD_HOST,
      cgroups: createNoopCgroupManager("test"),
      // Other programs on this host listen on 127.0.0.1 too; forward only ours.
      shouldForward: (port) => ports.includes(port),
      stopGraceMs: 500,
    });
    cleanups.push(() => s.stop());
    return s;
  }

  async function server(host: string, port = 0, reply = "hello"): Promise<Server> {
    const s = await listen(host, port, reply);
    cleanups.push(async () => {
      if (s.listening) await closeServer(s);
    });
    return s;
  }

  it("forwards a 127.0.0.1-only server to the forward host and follows its life", async () => {
    const app = await server("127.0.0.1");
    const port = portOf(app);
    expect(await fetchText(FORWARD_HOST, port)).toBe("error:ECONNREFUSED");

    const ports = subsystem([port]);
    ports.start();
    expect(ports.running).toBe(true);
    await waitFor("forwarded", async () => (await fetchText(FORWARD_HOST, port)) === "hello");
    const [socat] = socatsFor(port);
    expect(socat?.ppid).toBe(process.pid);
    expect(socat?.cmdline).toEqual([
      "socat",
      `TCP4-LISTEN:${port},bind=${FORWARD_HOST},reuseaddr,fork`,
      `TCP4:127.0.0.1:${port}`,
    ]);

    await closeServer(app);
    await waitFor("socat gone after the server closed", () => socatsFor(port).length === 0);

    // The same port opening again gets a new forwarder.
    await server("127.0.0.1", port, "again");
    await waitFor("forwarded again", async () => (await fetchText(FORWARD_HOST, port)) === "again");
    await ports.stop();
  });

  it("backs off while nothing happens, and a poke brings the next scan forward", async () => {
    const app = await server("127.0.0.1");
    const port = portOf(app);
    await closeServer(app);
    // Quiet at once: waits of 100, 200, 400, 800 ms... up to 20 s.
    const ports = subsystem([port], { idleScanIntervalMs: 20_000, quietAfterMs: 0 });
    ports.start();
    await new Promise((r) => setTimeout(r, 1600));
    await server("127.0.0.1", port);
    // The scanner now waits at least 1.6 s; without the poke this would be that late.
    const t0 = Date.now();
    ports.poke();
    await waitFor(
      "forwarded after a poke",
      async () => (await fetchText(FORWARD_HOST, port)) === "hello",
      1000,
    );
    expect(Date.now() - t0).toBeLessThan(1000);
    await ports.stop();
  });

  it("stop kills every socat before resolving, and restart brings them back", async () => {
    const a = await server("127.0.0.1", 0, "a");
    const b = await server("127.0.0.1", 0, "b");
    const ports = subsystem([portOf(a), portOf(b)]);
    ports.start();
    await waitFor("both forwarded", async () => {
      const [ta, tb] = await Promise.all([
        fetchText(FORWARD_HOST, portOf(a)),
        fetchText(FORWARD_HOST, portOf(b)),
      ]);
      return ta === "a" && tb === "b";
    });
    // An open connection makes socat fork a child that must go too.
    const held = connect(portOf(a), FORWARD_HOST);
    await once(held, "connect");
    held.on("error", () => {});

    await ports.stop();
    expect(ports.running).toBe(false);
    expect(socatsFor(portOf(a))).toEqual([]);
    expect(socatsFor(portOf(b))).toEqual([]);
    expect(socatChildrenOfThisProcess()).toEqual([]);
    expect(await fetchText(FORWARD_HOST, portOf(a))).toBe("error:ECONNREFUSED");
    held.destroy();

    await ports.restart();
    expect(ports.running).toBe(true);
    await waitFor("forwarded after restart", async () => (await fetchText(FORWARD_HOST, portOf(b))) === "b");
    await ports.stop();
    expect(socatChildrenOfThisProcess()).toEqual([]);
  });

  it("survives stop and start in quick succession, including during the first scan", async () => {
    const app = await server("127.0.0.1", 0, "x");
    const port = portOf(app);
    const ports = subsystem([port]);
    for (let i = 0; i < 5; i++) {
      ports.start();
      await ports.stop();
      expect(socatsFor(port)).toEqual([]);
    }
    // start → restart → stop without waiting in between.
    ports.start();
    const restarted = ports.restart();
    const stopped = ports.stop();
    await Promise.all([restarted, stopped]);
    expect(ports.running).toBe(false);
    await new Promise((r) => setTimeout(r, SCAN_MS * 4));
    expect(socatsFor(port)).toEqual([]);
    ports.start();
    await waitFor("forwarded", async () => (await fetchText(FORWARD_HOST, port)) === "x");
  });

  it("starts nothing when stopped while a scan is reading or reconciling", async () => {
    const app = await server("127.0.0.1", 0, "y");
    const port = portOf(app);
    let stopDuringReconcile: (() => void) | undefined;
    const ports = createPortSubsystem({
      logger: createSilentLogger(),
      scanIntervalMs: SCAN_MS,
      forwardHost: FORWARD_HOST,
      cgroups: createNoopCgroupManager("test"),
      shouldForward: (p) => {
        stopDuringReconcile?.();
        return p === port;
      },
      stopGraceMs: 500,
    });
    cleanups.push(() => ports.stop());
    // Stops land at different points of the first scan: before, during and after the reads.
    for (const delayMs of [0, 1, 2, 3, 5, 8, 13]) {
      ports.start();
      await new Promise((r) => setTimeout(r, delayMs));
      await ports.stop();
      expect(socatsFor(port)).toEqual([]);
    }
    // stop() called from inside the reconcile step itself.
    let stopping: Promise<void> | undefined;
    stopDuringReconcile = () => {
      stopDuringReconcile = undefined;
      stopping = ports.stop();
    };
    ports.start();
    await waitFor("a stop from inside a scan", () => stopping !== undefined);
    await stopping;
    await new Promise((r) => setTimeout(r, SCAN_MS * 3));
    expect(socatsFor(port)).toEqual([]);
    expect(ports.running).toBe(false);
  });

  it("forwards a server on ::1 through a TCP6 target", async () => {
    const app = await server("::1", 0, "six");
    const port = portOf(app);
    const ports = subsystem([port]);
    ports.start();
    await waitFor("forwarded", async () => (await fetchText(FORWARD_HOST, port)) === "six");
    expect(socatsFor(port)[0]?.cmdline[2]).toBe(`TCP6:[::1]:${port}`);
  });

  it("leaves ports bound to a wildcard or the forward host alone", async () => {
    const wildcard = await server("0.0.0.0", 0, "w");
    const onHost = await server(FORWARD_HOST, 0, "h");
    const local = await server("127.0.0.1", 0, "l");
    const ports = subsystem([portOf(wildcard), portOf(onHost), portOf(local)]);
    ports.start();
    await waitFor(
      "the local one forwarded",
      async () => (await fetchText(FORWARD_HOST, portOf(local))) === "l",
    );
    await new Promise((r) => setTimeout(r, SCAN_MS * 3));
    expect(socatsFor(portOf(wildcard))).toEqual([]);
    expect(socatsFor(portOf(onHost))).toEqual([]);
  });
});
