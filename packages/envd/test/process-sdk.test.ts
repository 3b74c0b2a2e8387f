import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Process } from "@wrenn/proto";
import { CommandExitError, type Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";

// The SDK's user-switching tests need the `user` account E2B images have; tests run as
// root on a Debian host, so create it once if missing (idempotent).
function ensureUserAccount(): void {
  try {
    execFileSync("id", ["user"], { stdio: "ignore" });
  } catch {
    execFileSync("useradd", ["-m", "-s", "/bin/bash", "user"]);
  }
}

function processExists(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").length > 0;
  } catch {
    return false;
  }
}

describe("envd process service through the stock e2b SDK", () => {
  let fx: EnvdFixture;
  let sandbox: Sandbox;

  beforeAll(async () => {
    ensureUserAccount();
    fx = await startEnvd();
    sandbox = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  it("runs a foreground command with stdout, stderr and callbacks", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const result = await sandbox.commands.run("echo out; echo err >&2; echo more", {
      onStdout: (d) => {
        out.push(d);
      },
      onStderr: (d) => {
        err.push(d);
      },
    });
    expect(result).toMatchObject({ exitCode: 0, stdout: "out\nmore\n", stderr: "err\n" });
    expect(out.join("")).toBe("out\nmore\n");
    expect(err.join("")).toBe("err\n");
  });

  it("raises CommandExitError with the exit code", async () => {
    const error = await sandbox.commands.run("echo failing >&2; exit 7").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CommandExitError);
    expect((error as CommandExitError).exitCode).toBe(7);
    expect((error as CommandExitError).stderr).toBe("failing\n");
  });

  it("passes env vars and cwd, and runs as root or as user", async () => {
    const r = await sandbox.commands.run('echo "$GREETING" && pwd', {
      envs: { GREETING: "hello" },
      cwd: "/tmp",
    });
    expect(r.stdout).toBe("hello\n/tmp\n");
    expect((await sandbox.commands.run("whoami", { user: "root" })).stdout).toBe("root\n");
    const asUser = await sandbox.commands.run("whoami; echo $HOME; pwd", { user: "user" });
    // Without a cwd the default workdir applies (the fixture sets one), as in E2B's envd.
    expect(asUser.stdout).toBe(`user\n/home/user\n${fx.workDir}\n`);
    const inHome = await sandbox.commands.run("pwd", { user: "user", cwd: "~" });
    expect(inHome.stdout).toBe("/home/user\n");
  });

  it("feeds stdin and closes it", async () => {
    const handle = await sandbox.commands.run("cat | tr a-z A-Z", { background: true, stdin: true });
    await sandbox.commands.sendStdin(handle.pid, "hello stdin\n");
    await sandbox.commands.closeStdin(handle.pid);
    const result = await handle.wait();
    expect(result.stdout).toBe("HELLO STDIN\n");
  });

  it("runs in the background, lists, reconnects by pid, and kills", async () => {
    const handle = await sandbox.commands.run("for i in $(seq 1 100); do echo tick-$i; sleep 0.1; done", {
      background: true,
    });
    const listed = await sandbox.commands.list();
    expect(listed.map((p) => p.pid)).toContain(handle.pid);
    const seen: string[] = [];
    const again = await sandbox.commands.connect(handle.pid, {
      onStdout: (d) => {
        seen.push(d);
      },
    });
    await new Promise((r) => setTimeout(r, 400));
    expect(seen.join("")).toMatch(/tick-\d+/);
    expect(await sandbox.commands.kill(handle.pid)).toBe(true);
    const ended = await again.wait().catch((e: unknown) => e);
    expect((ended as CommandExitError).exitCode).toBe(-1);
    expect((ended as CommandExitError).error).toBe("signal: killed");
    expect(processExists(handle.pid)).toBe(false);
  });

  it("kills a command that exceeds timeoutMs", async () => {
    const started = Date.now();
    const error = await sandbox.commands.run("sleep 30", { timeoutMs: 700 }).catch((e: unknown) => e);
    expect(String(error)).toMatch(/timed out|deadline/i);
    expect(Date.now() - started).toBeLessThan(10_000);
    await new Promise((r) => setTimeout(r, 200));
    expect((await sandbox.commands.list()).filter((p) => p.args.join(" ").includes("sleep 30"))).toEqual([]);
  });

  it("delivers 10 MB of output completely and in order", async () => {
    const r = await sandbox.commands.run("seq 1 1200000");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1_200_000);
    expect(lines[0]).toBe("1");
    expect(lines.at(-1)).toBe("1200000");
  });

  it("drives a terminal: input, resize, output and kill", async () => {
    const chunks: Uint8Array[] = [];
    const terminal = await sandbox.pty.create({ cols: 80, rows: 24, onData: (d) => void chunks.push(d) });
    await sandbox.pty.resize(terminal.pid, { cols: 120, rows: 40 });
    await sandbox.pty.sendInput(terminal.pid, new TextEncoder().encode("stty size; echo pty-$((6*7))\n"));
    const text = () => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString();
    for (let i = 0; i < 100 && !text().includes("pty-42"); i++) await new Promise((r) => setTimeout(r, 50));
    expect(text()).toContain("40 120");
    expect(text()).toContain("pty-42");
    expect(await sandbox.pty.kill(terminal.pid)).toBe(true);
    const ended = await terminal.wait().catch((e: unknown) => e);
    expect((ended as CommandExitError).exitCode).toBe(-1);
  });
});

describe("envd process service: bad input over raw Connect", () => {
  let fx: EnvdFixture;
  beforeAll(async () => {
    fx = await startEnvd();
  });
  afterAll(() => fx.close());

  for (const useBinaryFormat of [false, true]) {
    const format = useBinaryFormat ? "binary" : "JSON";
    it(`answers Connect error codes, never crashes (${format})`, async () => {
      const client = createClient(
        Process,
        createConnectTransport({ baseUrl: fx.url, httpVersion: "1.1", useBinaryFormat }),
      );
      const codeOf = async (p: Promise<unknown>) =>
        ((await p.catch((e: unknown) => e)) as { code?: number }).code;
      // 5 = NotFound, 3 = InvalidArgument, 16 = Unauthenticated
      expect(
        await codeOf(
          client.sendSignal({ process: { selector: { case: "pid", value: 999_999 } }, signal: 9 }),
        ),
      ).toBe(5);
      expect(
        await codeOf(client.sendSignal({ process: { selector: { case: "tag", value: "none" } }, signal: 0 })),
      ).toBe(5);
      expect(await codeOf(client.sendInput({ process: { selector: { case: "pid", value: 1 } } }))).toBe(5);
      const missingCwd = client.start({ process: { cmd: "/bin/true", cwd: "/no/such/dir" } });
      expect(
        await codeOf(
          (async () => {
            for await (const _ of missingCwd) {
            }
          })(),
        ),
      ).toBe(3);
      const noCmd = client.start({ process: { cmd: "" } });
      expect(
        await codeOf(
          (async () => {
            for await (const _ of noCmd) {
            }
          })(),
        ),
      ).toBe(3);
      const unknownUser = client.start(
        { process: { cmd: "/bin/true" } },
        { headers: { authorization: `Basic ${Buffer.from("nobody-here:").toString("base64")}` } },
      );
      expect(
        await codeOf(
          (async () => {
            for await (const _ of unknownUser) {
            }
          })(),
        ),
      ).toBe(16);
    });
  }

  it("rejects a malformed request body and keeps serving", async () => {
    const res = await fetch(`${fx.url}/process.Process/List`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    const ok = await fetch(`${fx.url}/process.Process/List`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(ok.status).toBe(200);
    // No process leaked by the test run: every child of this process has exited.
    const children = readdirSync("/proc").filter((p) => {
      try {
        return (
          /^\d+$/.test(p) && readFileSync(`/proc/${p}/stat`, "utf8").split(" ")[3] === String(process.pid)
        );
      } catch {
        return false;
      }
    });
    expect(
      children.filter((pid) => !readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("esbuild")),
    ).toEqual([]);
  });
});
