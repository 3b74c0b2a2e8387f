export { definedEntries, envNumber } from "./env-values.js";
export { ERROR_CODES, type ErrorCode, HTTP_STATUS_BY_CODE, isErrorCode } from "./errors/codes.js";
export { errorBody, WrennError, type WrennErrorBody } from "./errors/wrenn-error.js";
export { newRequestId, newSandboxId, randomId } from "./ids.js";
export { listenOn } from "./listen.js";
export {
  createLogger,
  createSilentLogger,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from "./logger.js";
export { runLimited } from "./run-limited.js";
