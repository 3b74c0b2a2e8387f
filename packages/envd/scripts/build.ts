/**
 * Bundles envd into dist/envd.mjs (one ESM file) plus node-pty's runtime files, which
 * hold a native addon and cannot be bundled. dist/ is what guest images carry in /opt/envd.
 */
import { cpSync, existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { build } from "esbuild";

const envdDir = resolve(import.meta.dirname, "..");
const dist = join(envdDir, "dist");
const require = createRequire(import.meta.url);

async function main(): Promise<void> {
  rmSync(dist, { recursive: true, force: true });
  mkdirSync(dist, { recursive: true });
  await build({
    entryPoints: [join(envdDir, "src/main.ts")],
    outfile: join(dist, "envd.mjs"),
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["node-pty"],
    // CommonJS dependencies inside an ESM bundle still call require().
    banner: {
      js: "import { createRequire as __wrennCreateRequire } from 'node:module'; const require = __wrennCreateRequire(import.meta.url);",
    },
    legalComments: "none",
    logLevel: "warning",
  });
  const ptyDir = dirname(require.resolve("node-pty/package.json"));
  const target = join(dist, "node_modules/node-pty");
  for (const part of ["package.json", "lib", "build/Release/pty.node"]) {
    const from = join(ptyDir, part);
    if (!existsSync(from)) throw new Error(`node-pty is missing ${part}; reinstall dependencies`);
    cpSync(from, join(target, part), { recursive: true });
  }
  writeFileSync(
    join(dist, "package.json"),
    `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`,
  );
  process.stdout.write(`envd bundle written to ${dist}\n`);
}

await main();
