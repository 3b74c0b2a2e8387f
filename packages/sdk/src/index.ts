export { SANDBOX_STATES, type SandboxState } from "@wrenn/api";
export { ApiClient, type RequestOptions } from "./api-client.js";
export { ApiKeys } from "./api-keys.js";
export type { ApiKeyInfo, EntryInfo, SandboxInfo, SandboxNetworkInfo, SnapshotInfo } from "./api-types.js";
export {
  type BackgroundCommandOptions,
  CommandHandle,
  type CommandOptions,
  type CommandResult,
  Commands,
  DEFAULT_COMMAND_TIMEOUT_MS,
  type ProcessInfo,
  type Signal,
  type StartOptions,
} from "./commands.js";
export {
  type ConfigFallback,
  type ConfigSource,
  type ConnectionOptions,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type ResolvedConnection,
  resolveConnection,
} from "./config.js";
export {
  type ApiErrorCode,
  apiErrorFromResponse,
  isWrennApiError,
  WrennApiError,
  WrennBuildError,
  WrennConfigError,
  WrennConnectionError,
  WrennCopySourceError,
  WrennSdkError,
} from "./errors.js";
export { type FileData, type FileOptions, Files, type WriteInfo } from "./files.js";
export { type ApiHealth, getHealth } from "./health.js";
export { Pty, type PtyExit, PtyHandle, type PtyOptions, type PtySize } from "./pty.js";
export {
  type ClientOptions,
  Sandbox,
  type SandboxCreateOptions,
  type SandboxListOptions,
  type SandboxMetrics,
  type SandboxMetricsSample,
  type SandboxNetworkOptions,
  type SandboxNetworkPolicy,
  type SandboxPage,
  type TimeRangeOptions,
} from "./sandbox.js";
export { Snapshot } from "./snapshot.js";
export type { BuildInfo, BuildLogEntry, BuildLogPage, TemplateInfo } from "./template-types.js";
export {
  type CopyArchive,
  type PackCopySource,
  type TemplateBuildOptions,
  type TemplateSpec,
  type TemplateStep,
  Templates,
} from "./templates.js";
export { type TeamMetricsSample, Usage, type UsageDay } from "./usage.js";
export {
  VolumeContent,
  type VolumeContentAccess,
  type VolumeEntry,
  type VolumeMakeDirOptions,
  type VolumeOwnerOptions,
  type VolumeRequestOptions,
  type VolumeWriteOptions,
} from "./volume-content.js";
export { Volume, type VolumeInfo, Volumes } from "./volumes.js";
