import { execFileSync } from "node:child_process";
import { WrennApiError, WrennConfigError, WrennConnectionError } from "@wrenn/sdk";
import { describe, expect, it } from "vitest";
import { commandLineOf, quoteShellWord } from "../src/command-line.js";
import { formatTable, parsePairs } from "../src/format.js";
import { CliError, formatError, parseCpTarget, parseVolumeMount, UsageError } from "../src/index.js";

describe("parseCpTarget", () => {
  it("reads <id>:<path> as a sandbox path and everything else as local", () => {
    expect(parseCpTarget("iabc123:/home/user/a.txt")).toEqual({
      sandboxId: "iabc123",
      path: "/home/user/a.txt",
    });
    expect(parseCpTarget("./a:b")).toEqual({ local: "./a:b" });
    expect(parseCpTarget("/tmp/x")).toEqual({ local: "/tmp/x" });
    expect(parseCpTarget("-")).toEqual({ local: "-" });
  });
});

describe("parseVolumeMount", () => {
  it("splits <name>:<absolute path> at the first colon and refuses anything else", () => {
    expect(parseVolumeMount("data:/mnt/data")).toEqual({ volume: "data", path: "/mnt/data" });
    expect(parseVolumeMount("vol-1:/a:b")).toEqual({ volume: "vol-1", path: "/a:b" });
    expect(() => parseVolumeMount("data")).toThrow(UsageError);
    expect(() => parseVolumeMount(":/mnt")).toThrow(UsageError);
    expect(() => parseVolumeMount("data:mnt")).toThrow(UsageError);
  });
});

describe("formatError", () => {
  it("prints API errors in one line with the code and a hint", () => {
    const err = new WrennApiError({
      code: "not_found",
      status: 404,
      message: "sandbox x\nnot found",
      method: "GET",
      path: "/v1/sandboxes/x",
    });
    expect(formatError(err)).toEqual({
      line: "error [not_found]: sandbox x not found (hint: list what exists with `wrenn sandbox ls`, `wrenn snapshot ls`, `wrenn template ls` or `wrenn volume ls`)",
      exitCode: 1,
    });
  });

  it("distinguishes connection, config, usage and CLI errors", () => {
    expect(
      formatError(new WrennConnectionError({ url: "http://x", timedOut: false, message: "cannot reach" }))
        .line,
    ).toMatch(/^error \[connection\]: cannot reach \(hint: is the control plane running\?/);
    expect(formatError(new WrennConfigError("no API URL")).line).toMatch(/^error \[config\]: no API URL/);
    expect(formatError(new UsageError("missing <id>"))).toMatchObject({ exitCode: 2 });
    expect(formatError(new CliError("not_implemented", "no pty", "use exec")).line).toBe(
      "error [not_implemented]: no pty (hint: use exec)",
    );
  });
});

describe("format helpers", () => {
  it("aligns table columns", () => {
    expect(
      formatTable(
        ["A", "BB"],
        [
          ["long", "x"],
          ["s", "y"],
        ],
      ),
    ).toBe("A     BB\nlong  x\ns     y");
  });

  it("parses KEY=VALUE pairs and rejects others", () => {
    expect(parsePairs(["A=1", "B=x=y"], "env")).toEqual({ A: "1", B: "x=y" });
    expect(parsePairs(undefined, "env")).toBeUndefined();
    expect(() => parsePairs(["nope"], "env")).toThrow(/--env "nope": expected KEY=VALUE/);
  });
});

describe("commandLineOf", () => {
  /** What a real POSIX shell hands the program for a command line. */
  function argvThroughShell(line: string): string[] {
    const out = execFileSync("/bin/sh", ["-c", `${line}`], { encoding: "utf8" });
    return JSON.parse(out) as string[];
  }
  const printArgv = `${quoteShellWord(process.execPath)} -e 'console.log(JSON.stringify(process.argv.slice(1)))'`;

  it("passes several words through the shell exactly as given", () => {
    const words = ["sh", "-c", "echo hi > /home/user/f", "it's", "$HOME", "`id`", "", "a\\b", "*", "\n"];
    const line = commandLineOf(words);
    expect(argvThroughShell(`${printArgv} ${line}`)).toEqual(words);
  });

  it("keeps one word as a shell command line", () => {
    expect(commandLineOf(["echo out; exit 4"])).toBe("echo out; exit 4");
    expect(commandLineOf(["ls", "-la"])).toBe("ls -la");
  });
});
