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
});
