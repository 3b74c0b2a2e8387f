export { definedEntries, envNumber } from "./env-values.js";
export {
  CONNECT_CODE_BY_ERROR_CODE,
  ERROR_CODE_BY_CONNECT_CODE,
  ERROR_CODES,
  type ErrorCode,
  errorBody,
  errorCodeForStatus,
  fromConnectError,
  HTTP_STATUS_BY_CODE,
  type HttpErrorInfo,
  isErrorCode,
  parseHttpError,
  toConnectError,
  WRENN_ERROR_CODE_HEADER,
  WrennError,
  type WrennErrorBody,
  wrennErrorFromHttp,
} from "./errors/index.js";
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
