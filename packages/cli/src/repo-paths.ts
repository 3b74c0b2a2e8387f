import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The checkout this CLI runs from: guest/ scripts and the agent live beside it. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const GUEST_BUILD_SCRIPT = join(REPO_ROOT, "guest/build.sh");
export const AGENT_MAIN = join(REPO_ROOT, "packages/host-agent/src/main.ts");
