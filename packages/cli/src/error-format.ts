import { WrennApiError, WrennConfigError, WrennConnectionError } from "@wrenn/sdk";
import { CliError, UsageError } from "./cli-io.js";

const HINTS: Record<string, string> = {
  unauthenticated: "check WRENN_API_KEY or $WRENN_DIR/credentials.env",
  permission_denied: "this key's team may not do that",
  not_found:
    "list what exists with `wrenn sandbox ls`, `wrenn snapshot ls`, `wrenn template ls` or `wrenn volume ls`",
  already_exists: "pick another name, or remove the old one first",
  failed_precondition:
    "the target refuses this in its current state; the message says why (some commands take --force)",
  conflict:
    "the sandbox (or a volume's sandboxes) is not in a state that allows this; see `wrenn sandbox ls`",
  invalid_argument: "see `wrenn help`",
  no_capacity: "no host has room or the template: check `wrenn doctor` and the hosts",
  unavailable: "the sandbox's host is down or not answering; try again shortly",
  deadline_exceeded: "it took too long; raise --timeout or try again",
  payload_too_large: "the file or request is over the server's limit",
  resource_exhausted: "a quota or rate limit was hit; wait and retry",
  not_implemented: "this server does not support it yet",
  snapshot_corrupt: "the snapshot failed its checks; create it again",
  internal: "a server error; the control plane's log has the details",
};

/** Any error as one line: `error [code]: message (hint: …)`, and the exit code to use. */
export function formatError(err: unknown): { line: string; exitCode: number } {
  if (err instanceof UsageError) {
    return { line: `error [usage]: ${oneLine(err.message)} (hint: see \`wrenn help\`)`, exitCode: 2 };
  }
  if (err instanceof CliError) {
    return { line: `error [${err.code}]: ${oneLine(err.message)} (hint: ${err.hint})`, exitCode: 1 };
  }
  if (err instanceof WrennApiError) {
    const hint = HINTS[err.code] ?? `HTTP ${err.status}`;
    return { line: `error [${err.code}]: ${oneLine(err.message)} (hint: ${hint})`, exitCode: 1 };
  }
  if (err instanceof WrennConnectionError) {
    const hint = err.timedOut
      ? "the API did not answer in time; raise --timeout or check the server"
      : "is the control plane running? start one with `wrenn up`, or set WRENN_API_URL";
    return { line: `error [connection]: ${oneLine(err.message)} (hint: ${hint})`, exitCode: 1 };
  }
  if (err instanceof WrennConfigError) {
    return {
      line: `error [config]: ${oneLine(err.message)} (hint: run \`wrenn up\`, or pass --api-url/--api-key)`,
      exitCode: 1,
    };
  }
  const code =
    typeof (err as { code?: unknown })?.code === "string" ? (err as { code: string }).code : "error";
  const message = err instanceof Error ? err.message : String(err);
  return { line: `error [${code}]: ${oneLine(message)}`, exitCode: 1 };
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, " ").trim();
}
