import { defineConfig } from "vitest/config";

// VM tests boot real QEMU guests on a 2-core host: files run one at a time
// (fileParallelism off) so boots never starve each other, and timeouts are generous.
export default defineConfig({
  test: {
    include: ["packages/*/test/**/*.test.ts", "packages/*/src/**/*.test.ts", "tests/**/*.test.ts"],
    fileParallelism: false,
    // Clears what an interrupted earlier run left (test prefixes only) before any test starts.
    globalSetup: ["tests/sweep-test-leftovers.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
