import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { TEST_NET_PREFIX } from "../e2e/agent-fixture.js";
import { TEST_NET_PREFIXES } from "../sweep-test-leftovers.js";

const ROOT = resolve(import.meta.dirname, "../..");

function testSources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules") continue;
    const full = join(dir, name);
    if (statSync(full).isDirectory()) out.push(...testSources(full));
    else if (name.endsWith(".ts")) out.push(full);
  }
  return out;
}

/**
 * The suite's first step sweeps leftovers of an interrupted run by name prefix; a test
 * agent under a prefix missing from that list would leave its leftovers to the next run.
 */
describe("test network prefixes", () => {
  it("every prefix a test gives an agent is one the leftover sweep knows, and none is the production one", () => {
    const dirs = [
      join(ROOT, "tests"),
      ...readdirSync(join(ROOT, "packages")).map((p) => join(ROOT, "packages", p, "test")),
    ];
    const used = new Set<string>([TEST_NET_PREFIX]);
    const patterns = [
      /netNamePrefix: "([a-z0-9]+)"/g,
      /\bPREFIX = "([a-z0-9]+)"/g,
      /WRENN_NET_PREFIX: "([a-z0-9]+)"/g,
    ];
    for (const dir of dirs) {
      let files: string[] = [];
      try {
        files = testSources(dir);
      } catch {
        continue;
      }
      for (const file of files) {
        const text = readFileSync(file, "utf8");
        for (const re of patterns) for (const m of text.matchAll(re)) if (m[1]) used.add(m[1]);
      }
    }
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((p) => !(TEST_NET_PREFIXES as readonly string[]).includes(p))).toEqual([]);
    expect(used.has("wrenn")).toBe(false);
  });
});
