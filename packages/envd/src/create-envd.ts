import { createLogger, type Logger } from "@wrenn/shared";
import { createCgroupManager } from "./cgroups/create-cgroup-manager.js";
import { type EnvdConfig, parseEnvdConfig } from "./config.js";
import type { EnvdContext } from "./context.js";
import { FileMetadataStore } from "./filesystem/file-metadata.js";
import { createFilesystemService } from "./filesystem/filesystem-service.js";
import { createHttpRoutes } from "./http/routes.js";
import { createPortSubsystem } from "./ports/create-port-subsystem.js";
import { readImageEnv } from "./process/image-env.js";
import { createProcessService } from "./process/process-service.js";
import { createEnvdHttpServer, type EnvdServer, listenEnvd } from "./server.js";
import { createEnvdState } from "./state.js";
import { SystemHelper } from "./system/system-helper.js";

export interface Envd extends EnvdServer {
  readonly ctx: EnvdContext;
}

/** Wires envd from its options: state, cgroups, ports, services, server. Listens before returning. */
export async function createEnvd(input: Partial<EnvdConfig>, logger: Logger = createLogger()): Promise<Envd> {
  const config = parseEnvdConfig(input);
  const state = createEnvdState({
    defaultUser: config.defaultUser,
    defaultWorkdir: config.defaultWorkdir,
    imageEnv: await readImageEnv(config.imageEnvFile, logger),
  });
  const cgroups = await createCgroupManager(logger);
  logger.info("cgroups", { manager: cgroups.description });
  const ports = createPortSubsystem({
    logger,
    scanIntervalMs: config.portScanIntervalMs,
    idleScanIntervalMs: config.portScanIdleIntervalMs,
    quietAfterMs: config.portScanQuietAfterMs,
    forwardHost: config.forwardHost,
    cgroups,
  });
  const system = new SystemHelper({ logger, requestTimeoutMs: config.systemHelperTimeoutMs });
  const fileMetadata = new FileMetadataStore(system);
  const ctx: EnvdContext = { config, state, logger, cgroups, ports, system, fileMetadata };
  const server = createEnvdHttpServer(ctx, {
    process: createProcessService(ctx),
    filesystem: createFilesystemService(ctx),
    httpRoutes: createHttpRoutes(),
  });
  // Any request means someone is using the guest: a server it starts is forwarded promptly.
  server.on("request", () => ports.poke());
  const listening = await listenEnvd(server, config.port, config.host);
  if (!config.noVm) {
    ports.start();
    // Started now so it is resident (and paged in) in every snapshot of this VM; /init uses it.
    system.start().catch((err) => logger.error("system helper did not start", { err }));
  }
  logger.info("envd listening", { port: listening.port, host: config.host, noVm: config.noVm });
  return {
    ...listening,
    ctx,
    close: async () => {
      system.close();
      await ports.stop();
      await listening.close();
    },
  };
}
