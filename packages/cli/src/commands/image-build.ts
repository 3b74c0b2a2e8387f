import { spawn } from "node:child_process";
import { WrennError } from "@wrenn/shared";
import { GUEST_BUILD_SCRIPT } from "../repo-paths.js";

/** `wrenn image build [--name N]`: runs the guest image build, streaming its progress. */
export async function imageBuild(args: { name: string }, env: NodeJS.ProcessEnv): Promise<void> {
  const child = spawn("bash", [GUEST_BUILD_SCRIPT, "--name", args.name], { stdio: "inherit", env });
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("exit", resolve);
  });
  if (code !== 0) throw new WrennError("internal", `guest image build failed (exit ${code})`);
}
