import { CommandExitError, type Sandbox, SandboxError } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import { ensureTestUser } from "./files-helpers.js";
import { processExists, waitFor } from "./process-helpers.js";

const encode = (s: string) => new TextEncoder().encode(s);

/** Collects a terminal's output as text. */
function terminalOutput() {
  const chunks: Uint8Array[] = [];
  return {
    onData: (d: Uint8Array) => {
      chunks.push(d);
    },
    text: () => Buffer.concat(chunks.map((c) => Buffer.from(c))).toString(),
  };
}

describe("envd terminals through the stock e2b SDK", () => {
  let fx: EnvdFixture;
  let sandbox: Sandbox;

  beforeAll(async () => {
    // `user` is E2B's default account; created with useradd only when missing (idempotent).
    ensureTestUser();
    fx = await startEnvd();
    sandbox = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  it("runs a login shell with the request's env and exits with the shell's code", async () => {
    const out = terminalOutput();
    const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: out.onData, envs: { ABC: "123" } });
    await sandbox.pty.sendInput(term.pid, encode("echo abc=$ABC term=$TERM tty=$(tty)\nexit\n"));
    const result = await term.wait();
    expect(result.exitCode).toBe(0);
    expect(out.text()).toContain("abc=123 term=xterm-256color tty=/dev/pts/");
  });

  it("reports a non-zero exit of the shell as CommandExitError", async () => {
    const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: () => {} });
    await sandbox.pty.sendInput(term.pid, encode("exit 5\n"));
    const ended = await term.wait().catch((e: unknown) => e);
    expect(ended).toBeInstanceOf(CommandExitError);
    expect((ended as CommandExitError).exitCode).toBe(5);
  });

  it("ends when the shell exits even while keys keep arriving (they have nowhere to go)", async () => {
    const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: () => {} });
    await sandbox.pty.sendInput(term.pid, encode("exit 7\n"));
    let typing = true;
    const typist = (async () => {
      while (typing) {
        await sandbox.pty.sendInput(term.pid, encode("x")).catch(() => {});
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    try {
      const started = Date.now();
      const ended = await term.wait().catch((e: unknown) => e);
      expect((ended as CommandExitError).exitCode).toBe(7);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      typing = false;
      await typist;
    }
  });

  it("ends on Ctrl-D and refuses closeStdin and stdin writes", async () => {
    const out = terminalOutput();
    const term = await sandbox.pty.create({ cols: 80, rows: 24, onData: out.onData });
    await expect(sandbox.commands.closeStdin(term.pid)).rejects.toBeInstanceOf(SandboxError);
    await expect(sandbox.commands.sendStdin(term.pid, "x")).rejects.toBeInstanceOf(SandboxError);
    // bash drops a Ctrl-D typed before its prompt is up, so wait for the prompt.
    expect(await waitFor(() => /[#$] $/.test(out.text()))).toBe(true);
    await sandbox.pty.sendInput(term.pid, new Uint8Array([4]));
    expect((await term.wait()).exitCode).toBe(0);
  });

  it("runs as the requested user in the requested cwd", async () => {
    const out = terminalOutput();
    const term = await sandbox.pty.create({
      cols: 80,
      rows: 24,
      onData: out.onData,
      user: "user",
      cwd: "/tmp",
    });
    await sandbox.pty.sendInput(term.pid, encode("echo who=$(whoami) at=$(pwd) home=$HOME\nexit\n"));
    await term.wait();
    expect(out.text()).toContain("who=user at=/tmp home=/home/user");
  });

  it("re-attaches with pty.connect, resizes, and is killed", async () => {
    const first = await sandbox.pty.create({ cols: 80, rows: 24, onData: () => {}, timeoutMs: 0 });
    await first.disconnect();
    const out = terminalOutput();
    const again = await sandbox.pty.connect(first.pid, { onData: out.onData });
    await sandbox.pty.resize(first.pid, { cols: 132, rows: 43 });
    await sandbox.pty.sendInput(first.pid, encode("stty size\n"));
    expect(await waitFor(() => out.text().includes("43 132"))).toBe(true);
    expect(await sandbox.pty.kill(first.pid)).toBe(true);
    const ended = await again.wait().catch((e: unknown) => e);
    expect((ended as CommandExitError).error).toBe("signal: killed");
    expect(processExists(first.pid)).toBe(false);
    expect(await sandbox.pty.kill(first.pid)).toBe(false);
  });

  it("carries a large burst of terminal output completely", async () => {
    const out = terminalOutput();
    const term = await sandbox.pty.create({ cols: 200, rows: 50, onData: out.onData });
    await sandbox.pty.sendInput(term.pid, encode("stty -echo; seq 1 200000; echo END-$((1+1)); exit\n"));
    await term.wait();
    // Drop carriage returns and escape sequences (bracketed-paste toggles around the prompt).
    const escapes = new RegExp(`\r|${String.fromCharCode(27)}\\[[0-9;?]*[a-zA-Z]`, "g");
    const text = out.text().replace(escapes, "");
    const numbers = text.split("\n").filter((l) => /^\d+$/.test(l));
    expect(numbers).toHaveLength(200_000);
    expect(numbers.every((n, i) => Number(n) === i + 1)).toBe(true);
    expect(text).toContain("\nEND-2\n");
  });
});
