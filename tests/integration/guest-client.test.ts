import { GuestClient, trafficHopHeaders } from "@wrenn/guest-client";
import { createSilentLogger, WrennError } from "@wrenn/shared";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "../../packages/envd/test/envd-fixture.js";
import {
  type SandboxTrafficServer,
  startSandboxTrafficServer,
} from "../../packages/host-agent/src/traffic/sandbox-traffic-server.js";

const HOST_TOKEN = "host-token-for-the-guest-client-test";
const ACCESS_TOKEN = "envd-token-for-the-guest-client-test";
/** envd listens on its real port (49983) on an address of its own, as in a sandbox's slot. */
const GUEST_ADDRESS = "127.77.0.1";
const SANDBOX = "iguestclient00000000";

async function caught(promise: Promise<unknown>): Promise<WrennError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WrennError);
  return err as WrennError;
}

/**
 * The guest client through a real traffic listener to a real envd (in this process, no
 * VM): the path the control plane's /v1 commands and files take to a guest.
 */
describe("guest client through the traffic hop", () => {
  let envd: EnvdFixture;
  let traffic: SandboxTrafficServer;
  let running = true;
  let guest: GuestClient;
  const touched: string[] = [];

  const clientFor = (sandboxId: string, accessToken = ACCESS_TOKEN, hostToken = HOST_TOKEN) =>
    new GuestClient({
      baseUrl: `http://127.0.0.1:${traffic.port}`,
      headers: trafficHopHeaders({ hostToken, sandboxId, accessToken }),
      requestTimeoutMs: 10_000,
    });

  beforeAll(async () => {
    envd = await startEnvd({ host: GUEST_ADDRESS, port: 49983 });
    const init = await fetch(`http://${GUEST_ADDRESS}:49983/init`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ accessToken: ACCESS_TOKEN, envVars: {}, timestamp: new Date().toISOString() }),
    });
    expect(init.ok).toBe(true);
    traffic = await startSandboxTrafficServer({
      host: "127.0.0.1",
      port: 0,
      hostToken: HOST_TOKEN,
      sandboxAddress: async (id) => (id === SANDBOX && running ? GUEST_ADDRESS : undefined),
      touch: (id) => touched.push(id),
      logger: createSilentLogger(),
    });
    guest = clientFor(SANDBOX);
  });

  afterAll(async () => {
    await traffic?.close();
    await envd?.close();
  });

  it("runs a command to completion with stdin, env and exit code, and marks activity", async () => {
    touched.length = 0;
    const res = await guest.exec(
      { command: "cat; echo $GREETING >&2; exit 4", envs: { GREETING: "hello" } },
      { stdin: Buffer.from("from stdin") },
    );
    expect(Buffer.from(res.stdout).toString()).toBe("from stdin");
    expect(Buffer.from(res.stderr).toString()).toBe("hello\n");
    expect(res.exitCode).toBe(4);
    expect(res.pid).toBeGreaterThan(0);
    expect(touched).toContain(SANDBOX);
  });

  it("kills a command that outlives its timeout", async () => {
    const res = await guest.exec({ command: "sleep 30" }, { timeoutMs: 300 });
    expect(res.error).toMatch(/timed out after 300 ms/);
  });

  it("starts, lists and signals a background process by tag", async () => {
    const pid = await guest.startBackground({ command: "sleep 60" }, "sleeper");
    expect(pid).toBeGreaterThan(0);
    expect((await guest.list()).map((p) => [p.pid, p.tag])).toContainEqual([pid, "sleeper"]);
    await guest.signal({ tag: "sleeper" }, "SIGKILL");
    for (let i = 0; i < 50 && (await guest.list()).some((p) => p.pid === pid); i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect((await guest.list()).some((p) => p.pid === pid)).toBe(false);
  });

  it("streams files both ways and manages directories", async () => {
    const dir = `${envd.workDir}/d/e`;
    expect(await guest.makeDir(dir)).toBe(true);
    expect(await guest.makeDir(dir)).toBe(false);
    const data = new Uint8Array(3 * 1024 * 1024).map((_, i) => (i * 31) % 251);
    const parts = [data.subarray(0, 1_000_000), data.subarray(1_000_000)];
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = parts.shift();
        if (next) controller.enqueue(next);
        else controller.close();
      },
    });
    expect(await guest.writeFile(`${dir}/../e/f.bin`, body)).toBe(`${dir}/f.bin`);
    const chunks: Uint8Array[] = [];
    for await (const chunk of await guest.readFile(`${dir}/f.bin`)) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(Buffer.from(data))).toBe(true);
    expect((await guest.listDir(dir, 1)).map((e) => [e.name, Number(e.size)])).toEqual([
      ["f.bin", data.length],
    ]);
    await guest.remove(`${envd.workDir}/d`);
    expect((await caught(guest.readFile(`${dir}/f.bin`))).code).toBe("not_found");
    expect((await caught(guest.readFile("/proc/1/environ"))).message).toMatch(/outside the files API/);
  });

  it("names what failed: an unknown sandbox, a wrong envd token, a wrong host token", async () => {
    const unknown = clientFor("inosuchsandbox000000");
    expect((await caught(unknown.exec({ command: "true" }))).code).toBe("not_found");
    expect((await caught(unknown.readFile("/etc/hostname"))).code).toBe("not_found");
    expect((await caught(unknown.list())).code).toBe("not_found");
    expect((await caught(clientFor(SANDBOX, "wrong").list())).code).toBe("unauthenticated");
    expect((await caught(clientFor(SANDBOX, ACCESS_TOKEN, "wrong").list())).code).toBe("unavailable");
  });

  it("ends an open stream with a clean error when its sandbox stops running", async () => {
    const events = guest.start({ command: "echo started; sleep 60" });
    const first = await events.next();
    expect(first.value?.kind).toBe("started");
    running = false;
    try {
      const err = await (async () => {
        for await (const _ of events) {
          // Output until the hop ends the stream.
        }
      })().then(
        () => new Error("ended without an error"),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WrennError);
      // Gone from its host (killed or timed out): the sandbox is not found any more.
      expect((err as WrennError).code).toBe("not_found");
      expect((err as WrennError).message).toMatch(/was killed or timed out/);
    } finally {
      running = true;
    }
  });
});
