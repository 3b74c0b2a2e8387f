/**
 * Enforces the package dependency graph: which @wrenn/* packages each package may
 * import, and that no file reaches into another package through a relative path.
 * Run by `make test` (and as a vitest test) so a wrong-way import fails the build.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";

export const ALLOWED_IMPORTS: Record<string, readonly string[]> = {
  proto: [],
  api: ["shared"],
  shared: [],
  envd: ["proto", "shared"],
  "guest-client": ["proto", "shared"],
  "host-agent": ["proto", "shared", "guest-client"],
  "control-plane": ["api", "proto", "shared", "guest-client", "dashboard"],
  dashboard: ["api"],
  sdk: ["api", "shared"],
  cli: ["sdk", "shared"],
};

/**
 * Rules inside a package: files under `from` (a path prefix from the repo root) may not
 * import modules under any of `mayNotImport` (prefixes too), type-only imports included.
 */
export const INTERNAL_RULES: ReadonlyArray<{ from: string; mayNotImport: readonly string[]; why: string }> = [
  {
    from: "packages/control-plane/src/routes/",
    mayNotImport: [
      "packages/control-plane/src/db/database.ts",
      "packages/control-plane/src/db/migrations.ts",
      "packages/control-plane/src/drivers/",
    ],
    why: "routes call services, never the database or the host agents",
  },
  {
    from: "packages/control-plane/src/e2b/e2b-routes.ts",
    mayNotImport: [
      "packages/control-plane/src/db/database.ts",
      "packages/control-plane/src/db/migrations.ts",
      "packages/control-plane/src/drivers/",
    ],
    why: "routes call services, never the database or the host agents",
  },
  {
    from: "packages/control-plane/src/extensions.ts",
    mayNotImport: ["packages/control-plane/src/db/", "packages/control-plane/src/drivers/"],
    why: "extensions get services and events, not the raw database or the agents' clients",
  },
];

const IMPORT_RE = /(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function listTsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name === "dist") continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listTsFiles(full));
    else if (name.endsWith(".ts") || name.endsWith(".tsx")) out.push(full);
  }
  return out;
}

export function findLayerViolations(root: string): string[] {
  const packagesDir = join(root, "packages");
  const violations: string[] = [];
  for (const pkg of readdirSync(packagesDir)) {
    const pkgDir = join(packagesDir, pkg);
    if (!statSync(pkgDir).isDirectory()) continue;
    const allowed = ALLOWED_IMPORTS[pkg];
    if (!allowed) {
      violations.push(`packages/${pkg}: not in the dependency graph (scripts/check-layers.ts)`);
      continue;
    }
    for (const file of listTsFiles(pkgDir)) {
      const text = readFileSync(file, "utf8");
      for (const m of text.matchAll(IMPORT_RE)) {
        const spec = m[1] ?? m[2] ?? "";
        const where = relative(root, file);
        if (spec.startsWith("@wrenn/")) {
          const target = spec.slice("@wrenn/".length).split("/")[0] ?? "";
          if (target !== pkg && !allowed.includes(target)) {
            violations.push(`${where}: ${pkg} may not import @wrenn/${target}`);
          }
          if (
            where.startsWith(`packages${sep}dashboard${sep}web${sep}`) &&
            !/^(import|export) type\s/.test(m[0])
          ) {
            // The browser bundle takes the contract's types only: its zod schemas would add
            // tens of kilobytes to every first load.
            violations.push(`${where}: the web dashboard imports ${spec} for types only (import type)`);
          }
        } else if (spec.startsWith(".")) {
          const resolved = resolve(file, "..", spec);
          if (!resolved.startsWith(pkgDir + sep)) {
            violations.push(`${where}: relative import ${spec} leaves packages/${pkg}`);
          }
          const target = relative(root, resolved).split(sep).join("/").replace(/\.js$/, ".ts");
          for (const rule of INTERNAL_RULES) {
            if (!where.split(sep).join("/").startsWith(rule.from)) continue;
            if (rule.mayNotImport.some((prefix) => target.startsWith(prefix))) {
              violations.push(`${where}: may not import ${spec} (${rule.why})`);
            }
          }
        }
      }
    }
  }
  return violations;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const violations = findLayerViolations(resolve(import.meta.dirname, ".."));
  if (violations.length > 0) {
    console.error(`dependency-direction check failed:\n  ${violations.join("\n  ")}`);
    process.exit(1);
  }
  console.log("dependency-direction check: ok");
}
