import type { Logger } from "@wrenn/shared";
import type { CgroupManager } from "./cgroups/cgroup-manager.js";
import type { EnvdConfig } from "./config.js";
import type { FileMetadataStore } from "./filesystem/file-metadata.js";
import type { PortSubsystem } from "./ports/port-subsystem.js";
import type { EnvdState } from "./state.js";
import type { SystemHelper } from "./system/system-helper.js";

/** What every envd service is built from. Passed in; nothing here is global. */
export interface EnvdContext {
  config: EnvdConfig;
  state: EnvdState;
  logger: Logger;
  cgroups: CgroupManager;
  ports: PortSubsystem;
  /** Sets the clock and reseeds the RNG; started at boot only in a VM (never on a development host). */
  system: SystemHelper;
  /** User-defined file metadata (xattrs), through the system helper (started on first use off a VM). */
  fileMetadata: FileMetadataStore;
}
