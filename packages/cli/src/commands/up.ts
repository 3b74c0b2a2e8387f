import { spawn } from "node:child_process";
import { REPO_ROOT } from "../repo-paths.js";

/**
 * `wrenn up` is `make up` in the checkout the CLI runs from: installs what is missing,
 * builds the guest image if needed, then serves in the foreground (prints the API URL and
 * key, writes credentials.env); Ctrl-C reaches it through the terminal and stops everything.
 */
export function runUp(env: NodeJS.ProcessEnv): Promise<number> {
  const child = spawn("make", ["-C", REPO_ROOT, "--no-print-directory", "up"], { stdio: "inherit", env });
  // The terminal's Ctrl-C goes to the whole foreground group; the script does the stopping.
  const ignore = () => {};
  process.on("SIGINT", ignore);
  return new Promise((resolve) => {
    child.once("exit", (code, signal) => {
      process.off("SIGINT", ignore);
      resolve(code ?? (signal ? 130 : 1));
    });
  });
}
