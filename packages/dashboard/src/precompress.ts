/**
 * Writes `<file>.br` and `<file>.gz` beside every compressible file of the build, so the
 * control plane sends compressed bytes without compressing per request.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { DASHBOARD_DIST_DIR } from "./index.js";

const COMPRESSIBLE = /\.(html|js|css|svg|json|txt|map)$/;
const MIN_BYTES = 512;

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

let files = 0;
for (const file of walk(DASHBOARD_DIST_DIR)) {
  if (!COMPRESSIBLE.test(file)) continue;
  const bytes = readFileSync(file);
  if (bytes.length < MIN_BYTES) continue;
  writeFileSync(
    `${file}.br`,
    brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
  );
  writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }));
  files++;
}
console.log(`dashboard: ${files} files precompressed in ${DASHBOARD_DIST_DIR}`);
