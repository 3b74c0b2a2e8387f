// The error contract of every Wrenn boundary; browser-safe (the SDK imports it as `@wrenn/shared/errors`).
export { ERROR_CODES, type ErrorCode, HTTP_STATUS_BY_CODE, isErrorCode } from "./codes.js";
export {
  CONNECT_CODE_BY_ERROR_CODE,
  ERROR_CODE_BY_CONNECT_CODE,
  fromConnectError,
  toConnectError,
  WRENN_ERROR_CODE_HEADER,
} from "./connect.js";
export { type HttpErrorInfo, parseHttpError, wrennErrorFromHttp } from "./http-body.js";
export { errorCodeForStatus } from "./http-status.js";
export { errorBody, WrennError, type WrennErrorBody } from "./wrenn-error.js";
