import { ERROR_CODES } from "@wrenn/shared/errors";
import { z } from "zod";

/**
 * Messages of the two /v1 WebSocket streams, both directions. Every message is one JSON
 * text frame with a `type`; bytes travel base64-encoded in `data`.
 *   GET /v1/sandboxes/{id}/exec/ws   a command: stdout/stderr as they come, stdin, kill
 *   GET /v1/sandboxes/{id}/pty/ws    an interactive terminal (new, or attach by pid)
 * The client authenticates first (an API key on the upgrade request, or an `auth`
 * message), then sends one `start`; the server ends with `exit` or `error` and closes.
 */

const Base64Schema = z.base64();
const TerminalSizeFields = {
  cols: z.number().int().min(1).max(1000),
  rows: z.number().int().min(1).max(1000),
};

/** Client → server, first, when the upgrade request carried no API key (browsers cannot set headers). */
export const StreamAuthMessageSchema = z.object({ type: z.literal("auth"), api_key: z.string().min(1) });
export type StreamAuthMessage = z.input<typeof StreamAuthMessageSchema>;

/** Exec, client → server: the command to run (sent once, after auth). */
export const ExecStartMessageSchema = z.object({
  type: z.literal("start"),
  command: z
    .string()
    .min(1)
    .max(1024 * 1024),
  envs: z.record(z.string(), z.string()).default({}),
  cwd: z.string().default(""),
  user: z.string().default(""),
  timeout_ms: z.number().int().min(0).default(0),
});
export type ExecStartMessage = z.input<typeof ExecStartMessageSchema>;

/** Exec, client → server, after `started`: stdin bytes (and/or closing stdin), or kill. */
export const ExecInputMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("stdin"), data: Base64Schema.default(""), close: z.boolean().default(false) }),
  z.object({ type: z.literal("kill") }),
]);
export type ExecInputMessage = z.input<typeof ExecInputMessageSchema>;

/** PTY, client → server: a new terminal (`pid` 0) or attach to a running one, with its size. */
export const PtyStartMessageSchema = z.object({
  type: z.literal("start"),
  ...TerminalSizeFields,
  command: z
    .string()
    .max(64 * 1024)
    .default(""),
  envs: z.record(z.string(), z.string()).default({}),
  cwd: z.string().default(""),
  user: z.string().default(""),
  pid: z.number().int().min(0).default(0),
});
export type PtyStartMessage = z.input<typeof PtyStartMessageSchema>;

/** PTY, client → server, after `started`: keystrokes, a new size, or kill. */
export const PtyInputMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("input"), data: Base64Schema }),
  z.object({ type: z.literal("resize"), ...TerminalSizeFields }),
  z.object({ type: z.literal("kill") }),
]);
export type PtyInputMessage = z.input<typeof PtyInputMessageSchema>;

const StartedMessageSchema = z.object({ type: z.literal("started"), pid: z.number().int() });
const ExitMessageSchema = z.object({
  type: z.literal("exit"),
  exit_code: z.number().int(),
  error: z.string().optional(),
});
/** Server → client, last: the stream failed; `code` is from the error registry (or a newer server's). */
export const StreamErrorMessageSchema = z.object({
  type: z.literal("error"),
  code: z.string().describe(`one of ${ERROR_CODES.join(", ")}`),
  message: z.string(),
});
export type StreamErrorMessage = z.infer<typeof StreamErrorMessageSchema>;

/** Exec, server → client. */
export const ExecServerMessageSchema = z.discriminatedUnion("type", [
  StartedMessageSchema,
  z.object({ type: z.enum(["stdout", "stderr"]), data: Base64Schema }),
  ExitMessageSchema,
  StreamErrorMessageSchema,
]);
export type ExecServerMessage = z.infer<typeof ExecServerMessageSchema>;

/** PTY, server → client. */
export const PtyServerMessageSchema = z.discriminatedUnion("type", [
  StartedMessageSchema,
  z.object({ type: z.literal("data"), data: Base64Schema }),
  ExitMessageSchema,
  StreamErrorMessageSchema,
]);
export type PtyServerMessage = z.infer<typeof PtyServerMessageSchema>;
