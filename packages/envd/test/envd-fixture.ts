import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSilentLogger, type Logger } from "@wrenn/shared";
import { Sandbox } from "e2b";
import type { EnvdConfig } from "../src/config.js";
import { createEnvd, type Envd } from "../src/create-envd.js";

export interface EnvdFixture {
  envd: Envd;
  /** Base URL of the running envd, e.g. http://127.0.0.1:40123 */
  url: string;
  /** A scratch directory removed by close(). */
  workDir: string;
  /** A stock e2b SDK Sandbox pointed straight at this envd. */
  connectSdk(opts?: { accessToken?: string }): Promise<Sandbox>;
  close(): Promise<void>;
}

/** Starts a real envd in this process on a free loopback port, in development (no-VM) mode. */
export async function startEnvd(
  overrides: Partial<EnvdConfig> = {},
  logger: Logger = createSilentLogger(),
): Promise<EnvdFixture> {
  const workDir = mkdtempSync(join(tmpdir(), "wrenn-envd-test-"));
  const envd = await createEnvd(
    { port: 0, host: "127.0.0.1", noVm: true, defaultUser: "root", defaultWorkdir: workDir, ...overrides },
    logger,
  );
  const url = `http://127.0.0.1:${envd.port}`;
  return {
    envd,
    url,
    workDir,
    async connectSdk(opts = {}) {
      const sandbox = await Sandbox.create({ debug: true, sandboxUrl: url });
      if (opts.accessToken !== undefined) {
        // The SDK sends this header on every envd request once it knows the sandbox's token.
        (sandbox as unknown as { envdAccessToken?: string }).envdAccessToken = opts.accessToken;
      }
      return sandbox;
    },
    async close() {
      await envd.close();
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}
