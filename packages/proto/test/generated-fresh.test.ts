import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const protoDir = resolve(import.meta.dirname, "..");
const bufBin = resolve(protoDir, "../../node_modules/.bin/buf");

function readTree(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.set(relative(dir, full), readFileSync(full, "utf8"));
    }
  };
  walk(dir);
  return files;
}

describe("generated code", () => {
  const out = mkdtempSync(join(tmpdir(), "wrenn-gen-"));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("matches what `npm run generate` produces from the .proto sources", () => {
    execFileSync(bufBin, ["generate", "-o", out], {
      cwd: protoDir,
      env: { ...process.env, PATH: `${resolve(protoDir, "../../node_modules/.bin")}:${process.env.PATH}` },
    });
    const fresh = readTree(join(out, "src/gen"));
    const committed = readTree(join(protoDir, "src/gen"));
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [file, text] of fresh) {
      expect(committed.get(file), `${file} is stale: run npm run generate`).toBe(text);
    }
  });
});
