export {
  type EntryInfo,
  EntryInfoSchema,
  EventType,
  Filesystem,
  type FilesystemEvent,
  FilesystemEventSchema,
  FileType,
  WatchDirResponseSchema,
} from "./gen/filesystem/filesystem_pb.js";
export {
  type CreateSandboxRequest,
  HostAgentService,
  type SandboxInfo,
  SandboxInfoSchema,
  SandboxState,
  TimeoutAction,
} from "./gen/hostagent/v1/hostagent_pb.js";
export {
  Process,
  type ProcessConfig,
  type ProcessEvent,
  ProcessEventSchema,
  type ProcessInfo,
  ProcessInfoSchema,
  type ProcessInput,
  type ProcessSelector,
  Signal,
  type StartRequest,
} from "./gen/process/process_pb.js";
