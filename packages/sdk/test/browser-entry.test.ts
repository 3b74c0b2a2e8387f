import { readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const SDK_DIR = resolve(import.meta.dirname, "..");
const REPO_DIR = resolve(SDK_DIR, "../..");
const NODE_BUILTINS = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
/** Node-only globals the Wrenn sources must not touch in a browser bundle (`globalThis.process?.env` is the guarded exception). */
const NODE_GLOBAL_RE = /\bBuffer\b|(?<![.?\w])process\.|\b__dirname\b|\brequire\(/;

/**
 * Bundles `entry` as a browser would get it and lists what ties it to Node: unresolvable
 * imports (esbuild fails on Node built-ins for the browser platform), built-ins left
 * external, and Wrenn sources in the bundle that use Node-only globals.
 */
async function nodeTiesOf(entry: string): Promise<string[]> {
  const ties: string[] = [];
  let result: Awaited<ReturnType<typeof build>>;
  try {
    result = await build({
      entryPoints: [join(SDK_DIR, entry)],
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
  } catch (err) {
    const errors = (err as { errors?: { text: string }[] }).errors ?? [{ text: String(err) }];
    return errors.map((e) => `does not bundle for the browser: ${e.text}`);
  }
  for (const output of Object.values(result.metafile?.outputs ?? {})) {
    for (const imp of output.imports) {
      if (imp.external || NODE_BUILTINS.has(imp.path)) ties.push(`imports ${imp.path}`);
    }
  }
  for (const input of Object.keys(result.metafile?.inputs ?? {})) {
    if (!input.startsWith("packages/") && !input.startsWith("../")) continue;
    const file = resolve(process.cwd(), input);
    if (!file.startsWith(join(REPO_DIR, "packages"))) continue;
    const code = readFileSync(file, "utf8")
      .replace(/\/\*[\s\S]*?\*\//g, "")
      .replace(/(^|[^:])\/\/.*$/gm, "$1");
    const match = NODE_GLOBAL_RE.exec(code);
    if (match) ties.push(`${input} uses ${match[0]}`);
  }
  return ties;
}

describe("the @wrenn/sdk main entry in a browser", () => {
  it("bundles for the browser platform with nothing from Node", async () => {
    expect(await nodeTiesOf("src/index.ts")).toEqual([]);
  }, 60_000);

  it("is told apart from the Node entry, which the same check rejects", async () => {
    const ties = await nodeTiesOf("src/node.ts");
    expect(ties.length).toBeGreaterThan(0);
    expect(ties.join("\n")).toMatch(/node:(os|path|fs)/);
  }, 60_000);

  it("keeps the main entry's browser export free of the Node entry", () => {
    const pkg = JSON.parse(readFileSync(join(SDK_DIR, "package.json"), "utf8")) as {
      exports: Record<string, unknown>;
    };
    expect(pkg.exports).toEqual({
      ".": { browser: "./src/index.ts", node: "./src/index.node.ts", default: "./src/index.ts" },
      "./node": "./src/node.ts",
    });
  });

  it("resolves `@wrenn/sdk` to the browser-safe entry when bundled for a browser", async () => {
    const result = await build({
      stdin: { contents: 'export { Sandbox } from "@wrenn/sdk";', resolveDir: REPO_DIR, loader: "ts" },
      bundle: true,
      platform: "browser",
      format: "esm",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile?.inputs ?? {}).join("\n");
    expect(inputs).toContain("packages/sdk/src/index.ts");
    expect(inputs).not.toContain("index.node.ts");
  }, 60_000);
});
