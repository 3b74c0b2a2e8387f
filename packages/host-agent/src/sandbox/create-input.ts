import type { TimeoutActionName } from "./sandbox-record.js";

/** What a create asks for; everything unset takes the agent's defaults. */
export interface CreateSandboxInput {
  sandboxId?: string | undefined;
  template: string;
  /** Unset sizes take the defaults; explicit zeros are rejected. */
  resources?:
    | { vcpus?: number | undefined; memoryMiB?: number | undefined; diskMiB?: number | undefined }
    | undefined;
  timeoutSec?: number | undefined;
  timeoutAction?: TimeoutActionName | undefined;
  envVars?: Record<string, string> | undefined;
  envdAccessToken?: string | undefined;
  metadata?: Record<string, string> | undefined;
  defaultUser?: string | undefined;
  defaultWorkdir?: string | undefined;
  /** Start from this snapshot template (its vCPUs and memory) instead of booting `template`. */
  snapshot?: string | undefined;
}
