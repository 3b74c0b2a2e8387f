export {
  type EntryInfo,
  EntryInfoSchema,
  EventType,
  Filesystem,
  type FilesystemEvent,
  FilesystemEventSchema,
  FileType,
} from "./gen/filesystem/filesystem_pb.js";
export {
  Process,
  type ProcessConfig,
  type ProcessEvent,
  ProcessEventSchema,
  type ProcessInfo,
  ProcessInfoSchema,
  type ProcessSelector,
  Signal,
} from "./gen/process/process_pb.js";
