import { Code } from "@connectrpc/connect";
import { AuthenticationError, InvalidArgumentError, NotFoundError, type Sandbox } from "e2b";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type EnvdFixture, startEnvd } from "./envd-fixture.js";
import {
  codeOf,
  collect,
  createProcessClient,
  drain,
  type ProcessClient,
  userHeader,
} from "./process-helpers.js";

const pid = (value: number) => ({ selector: { case: "pid" as const, value } });

describe("envd process service: errors", () => {
  let fx: EnvdFixture;
  let sandbox: Sandbox;

  beforeAll(async () => {
    fx = await startEnvd();
    sandbox = await fx.connectSdk();
  });
  afterAll(() => fx.close());

  for (const binary of [false, true]) {
    describe(binary ? "binary" : "JSON", () => {
      let client: ProcessClient;
      beforeAll(() => {
        client = createProcessClient(fx.url, binary);
      });

      it("answers NotFound for an unknown pid or tag", async () => {
        expect(await codeOf(client.sendSignal({ process: pid(999_999), signal: 9 }))).toBe(Code.NotFound);
        expect(await codeOf(client.closeStdin({ process: pid(999_999) }))).toBe(Code.NotFound);
        expect(
          await codeOf(client.update({ process: pid(999_999), pty: { size: { cols: 1, rows: 1 } } })),
        ).toBe(Code.NotFound);
        expect(
          await codeOf(drain(client.connect({ process: { selector: { case: "tag", value: "nope" } } }))),
        ).toBe(Code.NotFound);
        expect(await codeOf(client.sendInput({ process: pid(999_999) }))).toBe(Code.NotFound);
      });

      it("answers InvalidArgument for bad requests", async () => {
        expect(await codeOf(client.sendSignal({ process: {}, signal: 9 }))).toBe(Code.InvalidArgument);
        expect(await codeOf(drain(client.start({})))).toBe(Code.InvalidArgument);
        expect(
          await codeOf(drain(client.start({ process: { cmd: "/bin/true", cwd: "/no/such/dir" } }))),
        ).toBe(Code.InvalidArgument);
        expect(await codeOf(drain(client.start({ process: { cmd: "/bin/true", cwd: "/etc/passwd" } })))).toBe(
          Code.InvalidArgument,
        );
        expect(
          await codeOf(
            drain(client.start({ process: { cmd: "/bin/true" }, pty: { size: { cols: 0, rows: 0 } } })),
          ),
        ).toBe(Code.InvalidArgument);
      });

      it("checks signals, input and terminal operations against the process", async () => {
        const stream = client.start({ process: { cmd: "/bin/sleep", args: ["10"] }, stdin: false });
        const it = stream[Symbol.asyncIterator]();
        const first = await it.next();
        const p = first.value?.event?.event.case === "start" ? first.value.event.event.value.pid : 0;
        const run = collect({ [Symbol.asyncIterator]: () => it });

        expect(await codeOf(client.sendSignal({ process: pid(p), signal: 0 }))).toBe(Code.InvalidArgument);
        const stdin = { input: { case: "stdin" as const, value: new Uint8Array([1]) } };
        expect(await codeOf(client.sendInput({ process: pid(p), input: stdin }))).toBe(
          Code.FailedPrecondition,
        );
        const pty = { input: { case: "pty" as const, value: new Uint8Array([1]) } };
        expect(await codeOf(client.sendInput({ process: pid(p), input: pty }))).toBe(Code.FailedPrecondition);
        expect(await codeOf(client.sendInput({ process: pid(p), input: {} }))).toBe(Code.InvalidArgument);
        expect(await codeOf(client.update({ process: pid(p), pty: { size: { cols: 10, rows: 10 } } }))).toBe(
          Code.FailedPrecondition,
        );
        // Closing a stdin that was never opened is not an error (as in E2B's envd).
        expect(await codeOf(client.closeStdin({ process: pid(p) }))).toBeUndefined();
        async function* dataFirst() {
          yield { event: { case: "data" as const, value: { input: stdin } } };
        }
        expect(await codeOf(client.streamInput(dataFirst()))).toBe(Code.InvalidArgument);

        await client.sendSignal({ process: pid(p), signal: 15 });
        const ended = await run;
        expect(ended.end).toMatchObject({ exitCode: -1, exited: false, status: "signal: terminated" });
      });

      it("refuses an unknown user with Unauthenticated", async () => {
        const res = client.start({ process: { cmd: "/bin/true" } }, { headers: userHeader("nobody-here") });
        expect(await codeOf(drain(res))).toBe(Code.Unauthenticated);
      });
    });
  }

  it("maps errors to the SDK's error classes", async () => {
    await expect(sandbox.commands.run("true", { user: "nobody-here" })).rejects.toBeInstanceOf(
      AuthenticationError,
    );
    await expect(sandbox.commands.run("true", { cwd: "/no/such/dir" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    await expect(sandbox.commands.connect(999_999)).rejects.toBeInstanceOf(NotFoundError);
    expect(await sandbox.commands.kill(999_999)).toBe(false);
  });

  it("answers malformed bodies with a Connect error and keeps serving", async () => {
    const unary = await fetch(`${fx.url}/process.Process/List`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{not json",
    });
    expect(unary.status).toBe(400);
    expect(((await unary.json()) as { code: string }).code).toBe("invalid_argument");

    const bad = Buffer.from("{not json");
    const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, bad.length]), bad]);
    const streaming = await fetch(`${fx.url}/process.Process/Start`, {
      method: "POST",
      headers: { "content-type": "application/connect+json", "connect-protocol-version": "1" },
      body: envelope,
    });
    const body = Buffer.from(await streaming.arrayBuffer());
    // A streaming error arrives as the end-stream frame (flag 2) carrying the error.
    expect(body[0]).toBe(2);
    expect(JSON.parse(body.subarray(5).toString()).error.code).toBe("invalid_argument");

    const truncated = await fetch(`${fx.url}/process.Process/Start`, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
      body: Buffer.from([0, 0, 0, 0, 50, 1, 2]),
    });
    const truncatedBody = Buffer.from(await truncated.arrayBuffer());
    expect(truncatedBody[0]).toBe(2);
    expect(JSON.parse(truncatedBody.subarray(5).toString()).error.code).toBeDefined();

    const r = await sandbox.commands.run("echo still-serving");
    expect(r.stdout).toBe("still-serving\n");
  });
});
