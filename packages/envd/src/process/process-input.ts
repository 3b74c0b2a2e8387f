import { Code, ConnectError } from "@connectrpc/connect";
import type { ProcessInput } from "@wrenn/proto";
import type { ManagedProcess } from "./managed-process.js";
import { ProcessStateError } from "./process-backend.js";

/** Writes one SendInput/StreamInput chunk to the process's stdin or terminal. */
export async function deliverInput(proc: ManagedProcess, input: ProcessInput | undefined): Promise<void> {
  const value = input?.input;
  try {
    if (value?.case === "stdin") await proc.writeStdin(value.value);
    else if (value?.case === "pty") proc.writePty(value.value);
    else throw new ConnectError("input must be stdin or pty bytes", Code.InvalidArgument);
  } catch (err) {
    throw toProcessError(err);
  }
}

/**
 * Maps a failure of an operation on a process to a Connect error. Misuse (stdin of a
 * terminal, closed stdin) is FailedPrecondition where E2B's envd answers Internal or
 * Unknown: it is the caller's mistake, not a server fault; the SDK surfaces both alike.
 */
export function toProcessError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (err instanceof ProcessStateError) return new ConnectError(err.message, Code.FailedPrecondition);
  return new ConnectError(
    err instanceof Error ? err.message : String(err),
    Code.Internal,
    undefined,
    undefined,
    err,
  );
}
