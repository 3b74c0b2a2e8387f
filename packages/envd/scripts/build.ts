/**
 * Bundles envd into dist/envd.mjs (one ESM file) plus node-pty's runtime files, which hold a
 * native addon and cannot be bundled. dist/ is what guest images carry in /opt/envd.
 * pty.node uses N-API only, so the build from the host's Node 20 loads in the guest's Node 22.
 */
import { cpSync, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { basename, dirname, join, resolve } from "node:path";
import { build } from "esbuild";

const envdDir = resolve(import.meta.dirname, "..");
const dist = join(envdDir, "dist");
// Built beside dist/ and renamed over it, so a failed build leaves the previous bundle intact.
const staging = join(envdDir, ".dist-staging");
const require = createRequire(import.meta.url);

/** node-pty's files needed at run time on Linux: no sources, tests, maps or Windows helpers. */
function isPtyRuntimeFile(path: string): boolean {
  const name = basename(path);
  if (name.endsWith(".map") || name.endsWith(".test.js")) return false;
  return !/^(windows|conpty|conout)/i.test(name);
}

async function bundleEnvd(): Promise<void> {
  await build({
    entryPoints: [join(envdDir, "src/main.ts")],
    outfile: join(staging, "envd.mjs"),
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
    logLevel: "error",
  });
}

function copyNodePty(): void {
  const ptyDir = dirname(require.resolve("node-pty/package.json"));
  const target = join(staging, "node_modules/node-pty");
  for (const part of ["package.json", "LICENSE", "lib", "build/Release/pty.node"]) {
    const from = join(ptyDir, part);
    if (!existsSync(from)) throw new Error(`node-pty is missing ${part}; reinstall dependencies`);
    cpSync(from, join(target, part), { recursive: true, filter: isPtyRuntimeFile });
  }
}

async function main(): Promise<void> {
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  try {
    await bundleEnvd();
    copyNodePty();
    writeFileSync(
      join(staging, "package.json"),
      `${JSON.stringify({ type: "module", private: true }, null, 2)}\n`,
    );
  } catch (error) {
    rmSync(staging, { recursive: true, force: true });
    throw error;
  }
  rmSync(dist, { recursive: true, force: true });
  renameSync(staging, dist);
  process.stdout.write(`envd bundle written to ${dist}\n`);
}

try {
  await main();
} catch (error) {
  // esbuild has already printed its diagnostics; its stack trace adds nothing.
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`envd build failed: ${message.split("\n")[0]}\n`);
  process.exitCode = 1;
}
