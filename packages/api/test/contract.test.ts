import { describe, expect, it } from "vitest";
import {
  DEFAULT_SANDBOX_LIMITS,
  ErrorBodySchema,
  ExecInputMessageSchema,
  ExecServerMessageSchema,
  ExecStartMessageSchema,
  MetadataFilterSchema,
  PtyInputMessageSchema,
  PtyServerMessageSchema,
  PtyStartMessageSchema,
  SANDBOX_STATES,
  SandboxStateSchema,
  StreamAuthMessageSchema,
  sandboxBodySchemas,
} from "../src/index.js";

describe("sandbox bodies", () => {
  const bodies = sandboxBodySchemas({ maxTimeoutSec: 600, maxForkCount: 4 });

  it("apply their defaults and the configured limits", () => {
    expect(bodies.create.parse({})).toEqual({
      template: "base",
      on_timeout: "pause",
      auto_resume: false,
      on_timeout_keep_memory: true,
      env: {},
      metadata: {},
    });
    expect(bodies.create.safeParse({ timeout_sec: 601 }).success).toBe(false);
    expect(bodies.setTimeout.safeParse({ timeout_sec: 600 }).success).toBe(true);
    expect(bodies.fork.parse({})).toEqual({ count: 1, metadata: {} });
    expect(bodies.fork.safeParse({ count: 5 }).success).toBe(false);
    expect(sandboxBodySchemas(DEFAULT_SANDBOX_LIMITS).fork.safeParse({ count: 16 }).success).toBe(true);
  });

  it("refuse bad env names and memory below the floor", () => {
    expect(bodies.create.safeParse({ env: { "1BAD": "x" } }).success).toBe(false);
    expect(bodies.create.safeParse({ memory_mb: 64 }).success).toBe(false);
  });

  it("read a metadata filter from its URL-encoded form", () => {
    expect(MetadataFilterSchema.parse("a=1&b=two")).toEqual({ a: "1", b: "two" });
  });
});

describe("sandbox states", () => {
  it("are the six /v1 reports", () => {
    expect(SANDBOX_STATES).toEqual(["pending", "running", "paused", "stopped", "error", "missing"]);
    expect(SandboxStateSchema.safeParse("booting").success).toBe(false);
  });
});

describe("stream messages", () => {
  it("client → server: auth, exec and pty start with defaults, inputs", () => {
    expect(StreamAuthMessageSchema.safeParse({ type: "auth", api_key: "" }).success).toBe(false);
    expect(ExecStartMessageSchema.parse({ type: "start", command: "ls" })).toEqual({
      type: "start",
      command: "ls",
      envs: {},
      cwd: "",
      user: "",
      timeout_ms: 0,
    });
    expect(PtyStartMessageSchema.parse({ type: "start", cols: 80, rows: 24 })).toMatchObject({
      pid: 0,
      command: "",
    });
    expect(PtyStartMessageSchema.safeParse({ type: "start", cols: 0, rows: 24 }).success).toBe(false);
    expect(ExecInputMessageSchema.parse({ type: "stdin" })).toEqual({
      type: "stdin",
      data: "",
      close: false,
    });
    expect(ExecInputMessageSchema.safeParse({ type: "stdin", data: "not base64!" }).success).toBe(false);
    expect(PtyInputMessageSchema.parse({ type: "resize", cols: 100, rows: 30 }).type).toBe("resize");
    expect(PtyInputMessageSchema.safeParse({ type: "stdin", data: "" }).success).toBe(false);
  });

  it("server → client: started, output, exit, error", () => {
    const hi = "aGk=";
    expect(ExecServerMessageSchema.parse({ type: "started", pid: 7 })).toEqual({ type: "started", pid: 7 });
    expect(ExecServerMessageSchema.parse({ type: "stderr", data: hi })).toEqual({ type: "stderr", data: hi });
    expect(ExecServerMessageSchema.parse({ type: "exit", exit_code: 3 })).toEqual({
      type: "exit",
      exit_code: 3,
    });
    expect(ExecServerMessageSchema.parse({ type: "error", code: "not_found", message: "m" }).type).toBe(
      "error",
    );
    expect(ExecServerMessageSchema.safeParse({ type: "data", data: hi }).success).toBe(false);
    expect(PtyServerMessageSchema.parse({ type: "data", data: hi }).type).toBe("data");
    expect(PtyServerMessageSchema.safeParse({ type: "stdout", data: hi }).success).toBe(false);
  });
});

describe("error body", () => {
  it("is {error: {code, message}}", () => {
    expect(ErrorBodySchema.safeParse({ error: { code: "not_found", message: "m" } }).success).toBe(true);
    expect(ErrorBodySchema.safeParse({ code: "not_found", message: "m" }).success).toBe(false);
  });
});
