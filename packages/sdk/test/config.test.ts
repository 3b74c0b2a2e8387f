import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { resolveConnection as resolveWithoutFiles, WrennConfigError } from "../src/index.js";
import { credentialsPath, parseCredentials, resolveConnection } from "../src/node.js";

describe("parseCredentials", () => {
  it("reads KEY=value lines, skipping comments and blanks, unquoting and dropping export", () => {
    const text = [
      "# written by wrenn up",
      "",
      "WRENN_API_URL=http://127.0.0.1:8080",
      'export WRENN_API_KEY="wrn_abc"',
      "OTHER = 'spaced value' ",
      "not a pair",
      "EMPTY=",
    ].join("\r\n");
    expect(parseCredentials(text)).toEqual({
      WRENN_API_URL: "http://127.0.0.1:8080",
      WRENN_API_KEY: "wrn_abc",
      OTHER: "spaced value",
      EMPTY: "",
    });
  });

  it("keeps '=' inside values", () => {
    expect(parseCredentials("A=b=c")).toEqual({ A: "b=c" });
  });
});

describe("resolveConnection (@wrenn/sdk/node)", () => {
  const dir = mkdtempSync(join(tmpdir(), "wrenn-sdk-config-"));
  const empty = mkdtempSync(join(tmpdir(), "wrenn-sdk-config-empty-"));
  writeFileSync(
    join(dir, "credentials.env"),
    "WRENN_API_URL=http://file.example:8080/\nWRENN_API_KEY=wrn_fromfile\n",
  );
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(empty, { recursive: true, force: true });
  });

  it("puts options before env before the credentials file", async () => {
    const env = { WRENN_DIR: dir, WRENN_API_URL: "http://env.example", WRENN_API_KEY: "wrn_env" };
    expect(await resolveConnection({ apiKey: "wrn_opt" }, env)).toEqual({
      apiUrl: "http://env.example",
      apiKey: "wrn_opt",
      timeoutMs: 120_000,
      source: { apiUrl: "env", apiKey: "options" },
    });
  });

  it("falls back to $WRENN_DIR/credentials.env per value, trimming the URL's trailing slash", async () => {
    const c = await resolveConnection({ timeoutMs: 5 }, { WRENN_DIR: dir, WRENN_API_KEY: "wrn_env" });
    expect(c).toMatchObject({
      apiUrl: "http://file.example:8080",
      apiKey: "wrn_env",
      timeoutMs: 5,
      source: { apiUrl: "credentials-file", apiKey: "env" },
    });
  });

  it("defaults WRENN_DIR to ~/.wrenn", () => {
    expect(credentialsPath({ HOME: "/nowhere" })).toMatch(/\.wrenn\/credentials\.env$/);
    expect(credentialsPath({ WRENN_DIR: "/x" })).toBe("/x/credentials.env");
  });

  it("names what is missing and where it looked", async () => {
    await expect(resolveConnection({}, { WRENN_DIR: empty })).rejects.toThrow(WrennConfigError);
    await expect(resolveConnection({}, { WRENN_DIR: empty })).rejects.toThrow(
      `no API URL: pass apiUrl, set WRENN_API_URL, or write it to ${join(empty, "credentials.env")}`,
    );
    await expect(resolveConnection({ apiUrl: "http://x" }, { WRENN_DIR: empty })).rejects.toThrow(
      /no API key/,
    );
  });

  it("rejects URLs that are not http(s) and negative timeouts", async () => {
    const env = { WRENN_DIR: empty, WRENN_API_KEY: "k" };
    await expect(resolveConnection({ apiUrl: "not a url" }, env)).rejects.toThrow(/is not a URL/);
    await expect(resolveConnection({ apiUrl: "ftp://x" }, env)).rejects.toThrow(/must be http or https/);
    await expect(resolveConnection({ apiUrl: "http://x", timeoutMs: -1 }, env)).rejects.toThrow(/timeoutMs/);
  });
});

describe("resolveConnection (the browser-safe entry)", () => {
  it("reads options, then env, and never a file", async () => {
    expect(
      await resolveWithoutFiles({ apiKey: "wrn_opt" }, { WRENN_API_URL: "http://env.example/" }),
    ).toEqual({
      apiUrl: "http://env.example",
      apiKey: "wrn_opt",
      timeoutMs: 120_000,
      source: { apiUrl: "env", apiKey: "options" },
    });
    await expect(resolveWithoutFiles({}, { WRENN_DIR: "/nowhere" })).rejects.toThrow(
      "no API URL: pass apiUrl or set WRENN_API_URL",
    );
  });

  it("defaults env to the process environment when there is one", async () => {
    const before = process.env.WRENN_API_URL;
    process.env.WRENN_API_URL = "http://from-process.example";
    try {
      expect((await resolveWithoutFiles({ apiKey: "k" })).apiUrl).toBe("http://from-process.example");
    } finally {
      if (before === undefined) delete process.env.WRENN_API_URL;
      else process.env.WRENN_API_URL = before;
    }
  });
});

describe("`@wrenn/sdk` under Node", () => {
  it("finds the credentials file `wrenn up` wrote, with no options and no env", () => {
    const dir = mkdtempSync(join(tmpdir(), "wrenn-sdk-node-entry-"));
    try {
      writeFileSync(
        join(dir, "credentials.env"),
        "WRENN_API_URL=http://file.example:9/\nWRENN_API_KEY=wrn_fromfile\n",
      );
      // A child process: the Node entry sets the process's default fallback once, on import.
      const script =
        'import { resolveConnection } from "@wrenn/sdk"; const c = await resolveConnection(); console.log(JSON.stringify(c));';
      const out = execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
        env: { PATH: process.env.PATH ?? "", WRENN_DIR: dir },
        encoding: "utf8",
        cwd: join(import.meta.dirname, ".."),
      });
      expect(JSON.parse(out)).toMatchObject({
        apiUrl: "http://file.example:9",
        apiKey: "wrn_fromfile",
        source: { apiUrl: "credentials-file", apiKey: "credentials-file" },
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
