import { defineConfig } from "vitest/config";

// The fault suite (make test-faults): real VMs and control planes killed mid-operation. Its
// files end in .faults.ts so the main suite (vitest.config.ts) never picks them up.
export default defineConfig({
  test: {
    include: ["tests/faults/**/*.faults.ts"],
    fileParallelism: false,
    globalSetup: ["tests/sweep-test-leftovers.ts"],
    testTimeout: 180_000,
    hookTimeout: 180_000,
    reporters: ["default"],
  },
});
