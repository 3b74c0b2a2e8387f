export { runCli, USAGE } from "./cli.js";
export { CliError, type CliIo, processIo, UsageError } from "./cli-io.js";
export { checkApi, type DoctorCheck, formatDoctor, runDoctor } from "./commands/doctor.js";
export { parseCpTarget } from "./commands/sandbox.js";
export { parseVolumeMount } from "./commands/volume.js";
export { formatError } from "./error-format.js";
