import { readFileSync } from "node:fs";
import { type IncomingMessage, request } from "node:http";
import { CommandExitError, type Sandbox, TimeoutError } from "e2b";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import { ensureTestUser } from "./files-helpers.js";
import {
  collect,
  createProcessClient,
  type ProcessClient,
  pidsWithArgv,
  processExists,
  sleep,
  userHeader,
  waitFor,
} from "./process-helpers.js";

/** POSTs a Start request as Connect-JSON streaming and returns the raw response. */
function startRaw(baseUrl: string, body: unknown): Promise<IncomingMessage> {
  const json = Buffer.from(JSON.stringify(body));
  const envelope = Buffer.alloc(5 + json.length);
  envelope.writeUInt32BE(json.length, 1);
  json.copy(envelope, 5);
  return new Promise((resolve, reject) => {
    const req = request(`${baseUrl}/process.Process/Start`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
    });
    req.on("response", resolve).on("error", reject).end(envelope);
  });
}

/** Splits a Connect streaming body into its JSON messages (the end-stream frame excluded). */
async function* readFrames(res: IncomingMessage): AsyncGenerator<unknown> {
  let buf = Buffer.alloc(0);
  for await (const chunk of res) {
    buf = Buffer.concat([buf, chunk as Buffer]);
    while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
      const flags = buf[0] ?? 0;
      const data = buf.subarray(5, 5 + buf.readUInt32BE(1));
      buf = buf.subarray(5 + data.length);
      if ((flags & 2) === 0) yield JSON.parse(data.toString());
    }
  }
}

// Orphans a test deliberately leaves behind (children holding a pipe), killed by pid afterwards.
const ORPHAN_ARGV = ["sleep", "3007"];

describe("envd process lifecycle", () => {
  let fx: EnvdFixture;
  let sandbox: Sandbox;
  let client: ProcessClient;

  beforeAll(async () => {
    // `user` is E2B's default account; created with useradd only when missing (idempotent).
    ensureTestUser();
    fx = await startEnvd({ keepaliveIntervalMs: 100 });
    sandbox = await fx.connectSdk();
    client = createProcessClient(fx.url);
  });
  afterEach(() => {
    for (const pid of pidsWithArgv(ORPHAN_ARGV)) process.kill(pid, "SIGKILL");
  });
  afterAll(() => fx.close());

  it("ends a killed command promptly even when its child still holds the output pipe", async () => {
    const handle = await sandbox.commands.run(`${ORPHAN_ARGV.join(" ")} & echo started; wait`, {
      background: true,
    });
    expect(await waitFor(() => handle.stdout === "started\n")).toBe(true);
    const t0 = Date.now();
    expect(await handle.kill()).toBe(true);
    const ended = await handle.wait().catch((e: unknown) => e);
    expect(ended).toBeInstanceOf(CommandExitError);
    expect((ended as CommandExitError).error).toBe("signal: killed");
    expect(Date.now() - t0).toBeLessThan(3000);
    expect((await sandbox.commands.list()).map((p) => p.pid)).not.toContain(handle.pid);
  });

  it("reports an expired timeoutMs as the SDK's TimeoutError and kills the process", async () => {
    const handle = await sandbox.commands.run("sleep 30", { timeoutMs: 600, background: true });
    expect(processExists(handle.pid)).toBe(true);
    const ended = await handle.wait().catch((e: unknown) => e);
    expect(ended).toBeInstanceOf(TimeoutError);
    expect(await waitFor(() => !processExists(handle.pid), 3000)).toBe(true);
  });

  it("keeps a process running when its Start stream goes away", async () => {
    const handle = await sandbox.commands.run("sleep 0.8; echo finished", { background: true });
    await handle.disconnect();
    await sleep(200);
    expect(processExists(handle.pid)).toBe(true);
    const again = await sandbox.commands.connect(handle.pid);
    const result = await again.wait();
    expect(result.stdout).toBe("finished\n");
  });

  it("re-attaches by tag, then serves the retained end of a process that exited", async () => {
    const abort = new AbortController();
    const started = client.start(
      { process: { cmd: "/bin/bash", args: ["-c", "sleep 0.4; echo done; exit 3"] }, tag: "job-1" },
      { signal: abort.signal },
    );
    const first = await started[Symbol.asyncIterator]().next();
    const pid = first.value?.event?.event.case === "start" ? first.value.event.event.value.pid : 0;
    expect(pid).toBeGreaterThan(0);
    abort.abort();

    const listed = await client.list({});
    expect(listed.processes.find((p) => p.pid === pid)?.tag).toBe("job-1");

    const byTag = await collect(client.connect({ process: { selector: { case: "tag", value: "job-1" } } }));
    expect(byTag.pid).toBe(pid);
    expect(byTag.stdout.toString()).toBe("done\n");
    expect(byTag.end).toMatchObject({
      exitCode: 3,
      exited: true,
      status: "exit status 3",
      error: "exit status 3",
    });
    expect(byTag.order.at(-1)).toBe("end");

    // The process is gone from List, but a late Connect still learns how it ended.
    expect((await client.list({})).processes.map((p) => p.pid)).not.toContain(pid);
    const late = await collect(client.connect({ process: { selector: { case: "pid", value: pid } } }));
    expect(late.order).toEqual(["start", "end"]);
    expect(late.end?.exitCode).toBe(3);
  });

  it("takes client-streamed input in order and EOF from CloseStdin", async () => {
    const stream = client.start({ process: { cmd: "/bin/cat", args: [] } });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    const pid = first.value?.event?.event.case === "start" ? first.value.event.event.value.pid : 0;
    const run = collect({ [Symbol.asyncIterator]: () => it });
    const chunks = Array.from({ length: 50 }, (_, i) => `chunk-${i};`);
    type InputMessage =
      Parameters<ProcessClient["streamInput"]>[0] extends AsyncIterable<infer M> ? M : never;
    async function* input(): AsyncGenerator<InputMessage> {
      yield { event: { case: "start", value: { process: { selector: { case: "pid", value: pid } } } } };
      for (const c of chunks) {
        yield {
          event: { case: "data", value: { input: { input: { case: "stdin", value: Buffer.from(c) } } } },
        };
      }
      yield { event: { case: "keepalive", value: {} } };
    }
    await client.streamInput(input());
    await client.closeStdin({ process: { selector: { case: "pid", value: pid } } });
    const result = await run;
    expect(result.stdout.toString()).toBe(chunks.join(""));
    expect(result.end?.exitCode).toBe(0);
  });

  it("sends keepalives at the configured interval unless the client asks for its own", async () => {
    const quiet = await collect(client.start({ process: { cmd: "/bin/sleep", args: ["0.65"] } }));
    expect(quiet.keepalives).toBeGreaterThanOrEqual(3);
    const asked = await collect(
      client.start(
        { process: { cmd: "/bin/sleep", args: ["0.65"] } },
        { headers: { "keepalive-ping-interval": "5" } },
      ),
    );
    expect(asked.keepalives).toBe(0);
    expect(asked.order).toEqual(["start", "end"]);
  });

  it("runs a user's processes with that user's ids and groups, never root's", async () => {
    const user = ensureTestUser();
    const r = await sandbox.commands.run("id -u; id -g; id -G", { user: "user" });
    const [uid, gid, groups] = r.stdout.trimEnd().split("\n");
    expect(Number(uid)).toBe(user.uid);
    expect(Number(gid)).toBe(user.gid);
    expect(groups?.split(" ").map(Number)).not.toContain(0);

    const out: Uint8Array[] = [];
    const term = await sandbox.pty.create({
      cols: 80,
      rows: 24,
      user: "user",
      onData: (d) => void out.push(d),
    });
    await sandbox.pty.sendInput(
      term.pid,
      new TextEncoder().encode("echo ids=$(id -u):$(id -G | tr ' ' ,)\nexit\n"),
    );
    await term.wait();
    const text = Buffer.concat(out.map((c) => Buffer.from(c))).toString();
    const match = /ids=(\d+):([\d,]+)/.exec(text);
    expect(Number(match?.[1])).toBe(user.uid);
    expect(match?.[2]?.split(",").map(Number)).not.toContain(0);
  });

  it("gives stdin=false processes /dev/null and others an open input", async () => {
    const closed = await sandbox.commands.run("readlink /proc/self/fd/0");
    expect(closed.stdout).toBe("/dev/null\n");
    const open = await collect(
      client.start({ process: { cmd: "/usr/bin/readlink", args: ["/proc/self/fd/0"] } }),
    );
    // Node gives the child a socketpair where Go's envd gives a pipe; either way it is open input.
    expect(open.stdout.toString()).toMatch(/^(pipe|socket):/);
    const pid = (await sandbox.commands.run("sleep 5", { background: true })).pid;
    const code = await client
      .sendInput({
        process: { selector: { case: "pid", value: pid } },
        input: { input: { case: "stdin", value: Buffer.from("x") } },
      })
      .then(
        () => 0,
        (e: { code: number }) => e.code,
      );
    expect(code).toBe(9); // FailedPrecondition
    await sandbox.commands.kill(pid);
  });

  it("applies envd's env vars under the request's, and a PTY's TERM", async () => {
    fx.envd.ctx.state.envVars = { FROM_INIT: "init", SHARED: "init" };
    try {
      const r = await sandbox.commands.run('echo "$FROM_INIT $SHARED $USER $LOGNAME $HOME"', {
        envs: { SHARED: "request" },
        user: "user",
      });
      expect(r.stdout).toBe("init request user user /home/user\n");
      const ptyRun = await collect(
        client.start({
          process: { cmd: "/bin/sh", args: ["-c", "echo $TERM"] },
          pty: { size: { cols: 80, rows: 24 } },
        }),
      );
      expect(ptyRun.pty.toString()).toContain("xterm-256color");
    } finally {
      fx.envd.ctx.state.envVars = {};
    }
  });

  it("slows a process down instead of buffering when the reader stalls", async () => {
    // A raw HTTP reader, because Connect clients read ahead on their own; this measures envd.
    const total = 32 * 1024 * 1024;
    const res = await startRaw(fx.url, {
      process: { cmd: "/usr/bin/head", args: ["-c", String(total), "/dev/zero"] },
    });
    const frames = readFrames(res);
    const first = await frames.next();
    const pid = Number((first.value as { event: { start: { pid: number } } }).event.start.pid);
    res.pause();
    await sleep(1500);
    const written = Number(/wchar: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1]);
    // Kernel socket buffers and envd's bounded queue hold a few MiB; the rest waits in `head`.
    expect(written).toBeLessThan(total / 2);
    res.resume();
    let received = 0;
    let end: { exitCode?: number } | undefined;
    for await (const frame of frames) {
      const event = (frame as { event?: { data?: { stdout?: string }; end?: { exitCode?: number } } }).event;
      if (event?.data?.stdout) received += Buffer.from(event.data.stdout, "base64").byteLength;
      if (event?.end) end = event.end;
    }
    expect(received).toBe(total);
    expect(end).toEqual({ exited: true, status: "exit status 0" });
  });

  it("refuses to run a command that does not exist, for root and for a user", async () => {
    for (const headers of [userHeader("root"), userHeader("user")]) {
      const code = await collect(client.start({ process: { cmd: "/no/such/binary" } }, { headers })).then(
        () => 0,
        (e: { code: number }) => e.code,
      );
      expect(code).toBe(3); // InvalidArgument
    }
    const viaPath = await collect(client.start({ process: { cmd: "no-such-command-here" } })).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    expect(viaPath).toBe(3);
  });
});
