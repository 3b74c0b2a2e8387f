import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Sandbox } from "@wrenn/sdk";
import { beforeAll, describe, expect, it } from "vitest";
import { openWrennTerminal, runWrenn } from "./cli-runner.js";
import { useSdkStack, VM_STEP_MS } from "./sdk-stack-fixture.js";

/**
 * The `wrenn` CLI through the whole stack: a real control plane (PGlite), one real host agent,
 * real QEMU VMs, one sandbox made with the SDK carrying the steps.
 */
describe("the wrenn CLI through the full stack", () => {
  const ctx = useSdkStack();
  let sandbox: Sandbox;
  let env: Record<string, string>;
  let work: string;

  beforeAll(async () => {
    ({ env, work } = ctx);
    sandbox = await Sandbox.create({
      client: ctx.client,
      memoryMiB: 512,
      envs: { WHO: "sdk" },
      metadata: { suite: "sdk-stack" },
    });
  }, VM_STEP_MS);

  it(
    "wrenn sandbox exec: output, exit code, --json, --stdin, env",
    async () => {
      const plain = await runWrenn(
        ["sandbox", "exec", sandbox.sandboxId, "--", "echo out; echo err >&2; exit 4"],
        env,
      );
      expect(plain).toEqual({ code: 4, stdout: "out\n", stderr: "err\n" });

      const json = await runWrenn(
        [
          "sandbox",
          "exec",
          sandbox.sandboxId,
          "--json",
          "--env",
          "A=b",
          "--cwd",
          "/tmp",
          "--",
          "echo $A; pwd",
        ],
        env,
      );
      expect(json.code).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({
        exitCode: 0,
        stdout: "b\n/tmp\n",
        stderr: "",
        error: null,
      });

      // Several words are an argv, each reaching the guest exactly as given.
      const argv = await runWrenn(
        [
          "sandbox",
          "exec",
          sandbox.sandboxId,
          "--",
          "sh",
          "-c",
          "echo hi > /tmp/cli-argv; cat /tmp/cli-argv",
        ],
        env,
      );
      expect(argv).toEqual({ code: 0, stdout: "hi\n", stderr: "" });
      const words = await runWrenn(
        ["sandbox", "exec", sandbox.sandboxId, "--", "printf", "[%s]", "a b", "it's", "$HOME", ""],
        env,
      );
      expect(words.stdout).toBe("[a b][it's][$HOME][]");

      const piped = await runWrenn(["sandbox", "exec", sandbox.sandboxId, "--stdin", "--", "wc -c"], env, {
        input: "12345",
      });
      expect(piped.stdout.trim()).toBe("5");
    },
    VM_STEP_MS,
  );

  it(
    "wrenn sandbox shell in a real terminal: its size, resizes, raw keys (Ctrl-C), the shell's exit code",
    async () => {
      const term = openWrennTerminal(["sandbox", "shell", sandbox.sandboxId], env, { cols: 91, rows: 27 });
      // Markers are computed in the sandbox (`$((…))`), so the echo of typed input never matches.
      const sttySize = async (tag: string) => {
        term.write(`echo "${tag}-$((6*7)) $(stty size)"\r`);
        return (await term.waitFor(new RegExp(`${tag}-42 (\\d+ \\d+)`), 15_000))[1];
      };
      try {
        // The sandbox's prompt: the terminal is open and the CLI has switched to raw mode.
        await term.waitFor(/\S/, 60_000);
        term.write(`PS1='ready$((6*7))> '\r`);
        expect(await sttySize("opened")).toBe("27 91");

        term.resize(132, 43);
        // The CLI sees SIGWINCH and the next keys independently, so the new size may show a command late.
        let attempt = 0;
        await expect.poll(() => sttySize(`resized${++attempt}`), { timeout: 30_000 }).toBe("43 132");

        // Raw mode: Ctrl-C is a byte for the sandbox's terminal, which interrupts `sleep` there;
        // in cooked mode it would be SIGINT to the CLI itself.
        term.write(`echo "nap-$((2*4))"; sleep 100\r`);
        await term.waitFor(/nap-8/);
        await new Promise((resolve) => setTimeout(resolve, 1000));
        term.write("\x03");
        await term.waitFor(/\^C[\s\S]*ready42> $/, 20_000);
        term.write(`echo "status-$?"\r`);
        await term.waitFor(/status-130/);
        expect(term.exit).toBeUndefined();

        // Keys typed while the shell exits have nowhere to go, and must not crash the CLI.
        term.write("exit 7\r");
        const typing = setInterval(() => {
          if (!term.exit) term.write("x");
        }, 5);
        try {
          expect(await term.exited, term.output.slice(-2000)).toEqual({ exitCode: 7, signal: 0 });
        } finally {
          clearInterval(typing);
        }
      } finally {
        term.close();
      }
    },
    VM_STEP_MS,
  );

  it(
    "wrenn sandbox shell from piped input (scripts): runs it, exits with the shell's code",
    async () => {
      const res = await runWrenn(["sandbox", "shell", sandbox.sandboxId], env, {
        input: "echo shell-$((1+2))\nexit 7\n",
      });
      expect({ code: res.code, marked: /shell-3/.test(res.stdout) }, res.stderr).toEqual({
        code: 7,
        marked: true,
      });
    },
    VM_STEP_MS,
  );

  it(
    "wrenn sandbox cp: upload and download, files, directories and stdio",
    async () => {
      const local = join(work, "up.bin");
      const data = Buffer.alloc(200_000, 3);
      writeFileSync(local, data);
      const up = await runWrenn(["sandbox", "cp", local, `${sandbox.sandboxId}:/home/user/`, "--json"], env);
      expect(up.code, up.stderr).toBe(0);
      expect(JSON.parse(up.stdout)).toMatchObject({
        direction: "upload",
        path: "/home/user/up.bin",
        size: 200_000,
      });
      expect(
        Buffer.from(await sandbox.files.read("/home/user/up.bin", { format: "bytes" })).equals(data),
      ).toBe(true);

      const downDir = join(work, "down");
      mkdirSync(downDir);
      const down = await runWrenn(
        ["sandbox", "cp", `${sandbox.sandboxId}:/home/user/up.bin`, downDir, "--json"],
        env,
      );
      expect(down.code, down.stderr).toBe(0);
      expect(JSON.parse(down.stdout)).toMatchObject({
        direction: "download",
        local: join(downDir, "up.bin"),
        size: 200_000,
      });
      expect(readFileSync(join(downDir, "up.bin")).equals(data)).toBe(true);

      const fromStdin = await runWrenn(
        ["sandbox", "cp", "-", `${sandbox.sandboxId}:/home/user/stdin.txt`],
        env,
        {
          input: "from stdin",
        },
      );
      expect(fromStdin.code, fromStdin.stderr).toBe(0);
      const toStdout = await runWrenn(
        ["sandbox", "cp", `${sandbox.sandboxId}:/home/user/stdin.txt`, "-"],
        env,
      );
      expect(toStdout.stdout).toBe("from stdin");

      const missing = await runWrenn(["sandbox", "cp", `${sandbox.sandboxId}:/nope`, join(work, "x")], env);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toMatch(/^error \[not_found\]: /);
    },
    VM_STEP_MS,
  );

  it(
    "wrenn sandbox ls, snapshot create/ls/rm, sandbox create --snapshot, pause/resume, rm (all --json)",
    async () => {
      const ls = await runWrenn(["sandbox", "ls", "--json"], env);
      expect((JSON.parse(ls.stdout) as { sandboxId: string }[]).map((s) => s.sandboxId)).toEqual([
        sandbox.sandboxId,
      ]);

      const snap = await runWrenn(["snapshot", "create", sandbox.sandboxId, "cli-snap", "--json"], env);
      expect(snap.code, snap.stderr).toBe(0);
      expect(JSON.parse(snap.stdout)).toMatchObject({ name: "cli-snap", kind: "snapshot" });
      const snaps = await runWrenn(["snapshot", "ls", "--json"], env);
      expect((JSON.parse(snaps.stdout) as { name: string }[]).map((s) => s.name)).toEqual(["cli-snap"]);
      const table = await runWrenn(["snapshot", "ls"], env);
      expect(table.stdout).toMatch(/^NAME\s+FROM SANDBOX.*\ncli-snap\s+/);

      const created = await runWrenn(["sandbox", "create", "--snapshot", "cli-snap", "--json"], env);
      expect(created.code, created.stderr).toBe(0);
      const child = JSON.parse(created.stdout) as { sandboxId: string; state: string };
      expect(child.state).toBe("running");

      const paused = await runWrenn(["sandbox", "pause", child.sandboxId, "--json"], env);
      expect(JSON.parse(paused.stdout)).toEqual([{ sandboxId: child.sandboxId, state: "paused" }]);
      const resumed = await runWrenn(["sandbox", "resume", child.sandboxId, "--json"], env);
      expect(JSON.parse(resumed.stdout)).toEqual([{ sandboxId: child.sandboxId, state: "running" }]);

      const rm = await runWrenn(["sandbox", "rm", child.sandboxId, "--json"], env);
      expect(JSON.parse(rm.stdout)).toEqual([{ sandboxId: child.sandboxId, state: "stopped" }]);
      const inUse = await runWrenn(["snapshot", "rm", "cli-snap"], env);
      expect(inUse.code).toBe(1);
      expect(inUse.stderr).toMatch(/^error \[failed_precondition\]: snapshot \S+ is in use by 1 sandbox/);
      const forced = await runWrenn(["snapshot", "rm", "cli-snap", "--force", "--json"], env);
      expect(forced.code, forced.stderr).toBe(0);
      expect(JSON.parse(forced.stdout)).toEqual([{ name: "cli-snap", deleted: true }]);
      expect(JSON.parse((await runWrenn(["snapshot", "ls", "--json"], env)).stdout)).toEqual([]);
    },
    VM_STEP_MS,
  );
});
