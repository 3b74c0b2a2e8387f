import { Code, ConnectError } from "@connectrpc/connect";

/** The errno of a Node fs error, if it has one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === "object" && err !== null && "code" in err && typeof err.code === "string")
    return err.code;
  return undefined;
}

export function isNotFound(err: unknown): boolean {
  return errnoCode(err) === "ENOENT";
}

/**
 * Maps a filesystem failure to the Connect code the e2b SDK turns into its typed errors
 * (NotFound → FileNotFoundError, InvalidArgument → InvalidArgumentError, ...). Anything
 * unrecognised stays Internal, with the original error as cause.
 */
export function toConnectError(err: unknown, context: string): ConnectError {
  if (err instanceof ConnectError) return err;
  const message = `${context}: ${err instanceof Error ? err.message : String(err)}`;
  switch (errnoCode(err)) {
    case "ENOENT":
      return new ConnectError(message, Code.NotFound, undefined, undefined, err);
    case "EEXIST":
    case "ENOTEMPTY":
      return new ConnectError(message, Code.AlreadyExists, undefined, undefined, err);
    case "ENOTDIR":
    case "EISDIR":
    case "EINVAL":
    case "ENAMETOOLONG":
    case "EXDEV":
    case "ERR_INVALID_ARG_VALUE":
    case "ERR_INVALID_ARG_TYPE":
      return new ConnectError(message, Code.InvalidArgument, undefined, undefined, err);
    case "EACCES":
    case "EPERM":
    case "EROFS":
      return new ConnectError(message, Code.PermissionDenied, undefined, undefined, err);
    case "ELOOP":
      return new ConnectError(message, Code.FailedPrecondition, undefined, undefined, err);
    case "ENOSPC":
    case "EDQUOT":
    case "EMFILE":
    case "ENFILE":
      return new ConnectError(message, Code.ResourceExhausted, undefined, undefined, err);
    default:
      return new ConnectError(message, Code.Internal, undefined, undefined, err);
  }
}
