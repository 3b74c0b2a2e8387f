import { join } from "node:path";
import type { Logger } from "@wrenn/shared";
import type { AgentConfig } from "../config.js";
import { GaneshaSupervisor } from "./ganesha-supervisor.js";
import { VolumeService } from "./volume-service.js";
import { VolumeStore } from "./volume-store.js";

/**
 * The agent's volumes when they are on: the store (mounting every volume's image), the
 * server supervisor and the grants. The server is started (or adopted) by start().
 */
export async function createVolumeService(
  config: AgentConfig,
  logger: Logger,
): Promise<VolumeService | undefined> {
  if (!config.volumes) return undefined;
  const root = config.volumesDir ?? join(config.dataDir, "volumes");
  const store = await VolumeStore.open(logger, root);
  const server = new GaneshaSupervisor(logger, { dir: join(root, ".nfs") });
  return new VolumeService(logger, store, server, {
    nfsPort: config.nfsPort,
    mountPort: config.nfsMountPort,
  });
}
