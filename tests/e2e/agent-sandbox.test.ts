import { SandboxState } from "@wrenn/proto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AgentFixture, exec, startAgent } from "./agent-fixture.js";
import { findHostLeftovers, NO_LEFTOVERS } from "./host-leftovers.js";

/**
 * Real microVMs under QEMU: one sandbox through its whole life, driven over the agent's RPC
 * (lifecycle) and through its traffic listener with envd's protocol (commands, files, terminals).
 */
describe("host agent: one sandbox", () => {
  let fx: AgentFixture;
  let sandboxId = "";

  beforeAll(async () => {
    fx = await startAgent();
    const res = await fx.client.createSandbox({
      image: "base",
      resources: { vcpus: 1, memoryMib: 512 },
      envVars: { WRENN_TEST_VAR: "from-create" },
      metadata: { purpose: "e2e" },
    });
    sandboxId = res.sandbox?.sandboxId ?? "";
  }, 180_000);

  afterAll(async () => {
    await fx?.close();
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });

  it("reports the sandbox running with its sizes and metadata", async () => {
    const { sandbox } = await fx.client.getSandbox({ sandboxId });
    expect(sandbox?.state).toBe(SandboxState.RUNNING);
    expect(sandbox?.resources?.memoryMib).toBe(512);
    expect(sandbox?.metadata).toEqual({ purpose: "e2e" });
    expect(sandbox?.vmmPid).toBeGreaterThan(0);
    const { sandboxes } = await fx.client.listSandboxes({});
    expect(sandboxes.map((s) => s.sandboxId)).toContain(sandboxId);
  });

  it("runs a Linux kernel of its own, not the host's", async () => {
    const res = await exec(fx, sandboxId, "uname -a && cat /proc/cmdline");
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toContain("cloud-amd64");
    expect(res.stdout).toContain("wrenn-init");
  });

  it("maps processes at fixed addresses under TCG (translations reused), randomised under KVM", async () => {
    const res = await exec(
      fx,
      sandboxId,
      "cat /proc/sys/kernel/randomize_va_space; for i in 1 2; do grep -m1 libc /proc/self/maps | cut -d- -f1; done",
    );
    const [setting, first, second] = res.stdout.trim().split("\n");
    if (fx.agent.accel.accel === "tcg") {
      expect(setting).toBe("0");
      expect(first).toBe(second);
    } else {
      expect(setting).toBe("2");
      expect(first).not.toBe(second);
    }
  });

  it("runs python3 and sees the env vars given at create", async () => {
    const res = await exec(fx, sandboxId, `python3 -c 'import os; print(6*7, os.environ["WRENN_TEST_VAR"])'`);
    expect(res).toMatchObject({ exitCode: 0, stdout: "42 from-create\n" });
  });

  it("runs as user by default and as root on request, with non-zero exits reported", async () => {
    expect((await exec(fx, sandboxId, "whoami")).stdout.trim()).toBe("user");
    expect((await exec(fx, sandboxId, "whoami", { user: "root" })).stdout.trim()).toBe("root");
    const failed = await exec(fx, sandboxId, "echo oops >&2; exit 3");
    expect(failed).toMatchObject({ exitCode: 3, stderr: "oops\n" });
  });

  it("writes a file and reads it back, byte for byte", async () => {
    const data = new Uint8Array(256 * 1024).map((_, i) => (i * 7) % 256);
    const guest = await fx.guest(sandboxId);
    await guest.writeFile("/home/user/dir/data.bin", data);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await guest.readFile("/home/user/dir/data.bin")) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
    const listed = await guest.listDir("/home/user/dir", 1);
    expect(listed.map((e) => [e.name, Number(e.size)])).toEqual([["data.bin", data.length]]);
    const sum = await exec(fx, sandboxId, "sha256sum /home/user/dir/data.bin | cut -c1-16");
    const { createHash } = await import("node:crypto");
    expect(sum.stdout.trim()).toBe(createHash("sha256").update(data).digest("hex").slice(0, 16));
  });

  it("streams a long command's output as it is produced", async () => {
    const chunks: { at: number; text: string }[] = [];
    let exitCode: number | undefined;
    const started = Date.now();
    const guest = await fx.guest(sandboxId);
    for await (const event of guest.start({
      command: "for i in 1 2 3 4 5; do echo line-$i; sleep 0.3; done",
    })) {
      if (event.kind === "stdout")
        chunks.push({ at: Date.now() - started, text: Buffer.from(event.data).toString() });
      if (event.kind === "exited") exitCode = event.exitCode;
    }
    expect(exitCode).toBe(0);
    expect(chunks.map((c) => c.text).join("")).toBe("line-1\nline-2\nline-3\nline-4\nline-5\n");
    // Streamed, not buffered until the end: the first line arrived well before the last.
    expect((chunks.at(-1)?.at ?? 0) - (chunks[0]?.at ?? 0)).toBeGreaterThan(800);
  });

  it("opens a terminal, takes input, resizes, and is killed", async () => {
    const abort = new AbortController();
    const guest = await fx.guest(sandboxId);
    const stream = guest.start(
      { command: "exec /bin/bash -i -l", envs: { TERM: "xterm-256color" } },
      { signal: abort.signal, stdin: true, pty: { cols: 100, rows: 30 } },
    );
    const first = await stream.next();
    expect(first.value?.kind).toBe("started");
    const pid = first.value?.kind === "started" ? first.value.pid : 0;
    await guest.ptyResize(pid, 132, 43);
    await guest.ptyInput(pid, Buffer.from("stty size; echo pty-$((40+2))\n"));
    let output = "";
    while (!output.includes("pty-42")) {
      const next = await stream.next();
      if (next.done) break;
      if (next.value.kind === "pty") output += Buffer.from(next.value.data).toString();
    }
    expect(output).toContain("43 132");
    expect(output).toContain("pty-42");
    await guest.signal({ pid }, "SIGKILL");
    let exited = false;
    for (;;) {
      const next = await stream.next();
      if (next.done) break;
      if (next.value.kind === "exited") exited = true;
    }
    expect(exited).toBe(true);
  });

  it("rejects paths outside the files API, keeping the sandbox healthy", async () => {
    const guest = await fx.guest(sandboxId);
    await expect(guest.readFile("/proc/1/environ")).rejects.toThrow(/outside the files API/);
    await expect(guest.writeFile("/proc/huge", new Uint8Array(16))).rejects.toThrow(/outside the files API/);
    expect((await exec(fx, sandboxId, "test -e /tmp/huge; echo $?")).stdout.trim()).toBe("1");
  });

  it("destroys the sandbox and leaves nothing behind", async () => {
    await fx.client.destroySandbox({ sandboxId });
    await expect(fx.client.getSandbox({ sandboxId })).rejects.toThrow(/not found/);
    expect(findHostLeftovers(fx.dataDir)).toEqual(NO_LEFTOVERS);
  });
});
