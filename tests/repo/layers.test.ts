import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { findLayerViolations } from "../../scripts/check-layers.js";

describe("dependency direction", () => {
  it("holds for this repository", () => {
    expect(findLayerViolations(resolve(import.meta.dirname, "../.."))).toEqual([]);
  });

  const fixture = mkdtempSync(join(tmpdir(), "wrenn-layers-"));
  afterAll(() => rmSync(fixture, { recursive: true, force: true }));

  it("reports envd importing the host agent and a relative escape", () => {
    mkdirSync(join(fixture, "packages/envd/src"), { recursive: true });
    mkdirSync(join(fixture, "packages/shared/src"), { recursive: true });
    writeFileSync(
      join(fixture, "packages/envd/src/bad.ts"),
      'import { x } from "@wrenn/host-agent";\nimport { y } from "../../shared/src/index.js";\n',
    );
    const violations = findLayerViolations(fixture);
    expect(violations).toHaveLength(2);
    expect(violations[0]).toContain("may not import @wrenn/host-agent");
    expect(violations[1]).toContain("leaves packages/envd");
  });

  it("reports a control-plane route or extension that reaches the database or a driver", () => {
    const cp = join(fixture, "packages/control-plane/src");
    mkdirSync(join(cp, "routes"), { recursive: true });
    writeFileSync(join(cp, "routes/bad-routes.ts"), 'import type { Db } from "../db/database.js";\n');
    writeFileSync(
      join(cp, "routes/good-routes.ts"),
      'import type { Services } from "../create-services.js";\n',
    );
    writeFileSync(
      join(cp, "extensions.ts"),
      'import type { HostClientPool } from "./drivers/host-pool.js";\n',
    );
    const violations = findLayerViolations(fixture).filter((v) => v.includes("control-plane"));
    expect(violations.sort()).toEqual([
      expect.stringContaining(
        "extensions.ts: may not import ./drivers/host-pool.js (extensions get services",
      ),
      expect.stringContaining("routes/bad-routes.ts: may not import ../db/database.js (routes call services"),
    ]);
  });
});
