import { Readable } from "node:stream";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  DirCreatedSchema,
  EntrySchema,
  ExecBodySchema,
  ExecResultSchema,
  FileWrittenSchema,
  IdParamsSchema,
  ListDirQuerySchema,
  listSchema,
  MakeDirBodySchema,
  PathQuerySchema,
  ProcessSchema,
  SignalNameSchema,
  StartedProcessSchema,
  StartProcessBodySchema,
} from "@wrenn/api";
import { FileType } from "@wrenn/proto";
import { z } from "zod";
import type { Services } from "../create-services.js";
import { type AnyRouteSpec, defineRoute } from "../http/route-spec.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Output as UTF-8 text when it is, else base64 (with the encoding named). */
function encodeOutput(bytes: Uint8Array): { data: string; encoding: "utf8" | "base64" } {
  try {
    return { data: utf8.decode(bytes), encoding: "utf8" };
  } catch {
    return { data: Buffer.from(bytes).toString("base64"), encoding: "base64" };
  }
}

const ENTRY_TYPE: Record<FileType, string> = {
  [FileType.UNSPECIFIED]: "unknown",
  [FileType.FILE]: "file",
  [FileType.DIRECTORY]: "directory",
  [FileType.SYMLINK]: "symlink",
};

/** A running sandbox's guest: commands, processes and files (envd through the traffic hop). */
export function sandboxGuestRoutes(services: Services): AnyRouteSpec[] {
  const sandboxes = services.sandboxes;
  return [
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/exec",
      summary: "Run a command to completion",
      tag: "Commands",
      auth: "api_key",
      params: IdParamsSchema,
      body: ExecBodySchema,
      responses: {
        200: {
          description: "Exit code and output (base64 when not UTF-8)",
          schema: ExecResultSchema,
        },
      },
      handler: async (ctx) => {
        const res = await sandboxes.guest.exec(ctx.principal, ctx.params.id, {
          command: ctx.body.command,
          envs: ctx.body.envs,
          cwd: ctx.body.cwd,
          user: ctx.body.user,
          timeoutMs: ctx.body.timeout_ms,
          stdin: ctx.body.stdin === undefined ? undefined : new TextEncoder().encode(ctx.body.stdin),
        });
        const stdout = encodeOutput(res.stdout);
        const stderr = encodeOutput(res.stderr);
        return {
          exit_code: res.exitCode,
          stdout: stdout.data,
          stderr: stderr.data,
          stdout_encoding: stdout.encoding,
          stderr_encoding: stderr.encoding,
          error: res.error || null,
          pid: res.pid,
        };
      },
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/processes",
      summary: "Start a background process",
      tag: "Commands",
      auth: "api_key",
      params: IdParamsSchema,
      body: StartProcessBodySchema,
      responses: { 201: { description: "Its pid", schema: StartedProcessSchema } },
      handler: async (ctx) => ({
        pid: (await sandboxes.guest.startProcess(ctx.principal, ctx.params.id, ctx.body)).pid,
      }),
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}/processes",
      summary: "List running processes started through the API",
      tag: "Commands",
      auth: "api_key",
      params: IdParamsSchema,
      responses: {
        200: {
          description: "Processes",
          schema: listSchema(ProcessSchema),
        },
      },
      handler: async (ctx) => ({
        items: (await sandboxes.guest.listProcesses(ctx.principal, ctx.params.id)).map((p) => ({
          pid: p.pid,
          tag: p.tag,
          cmd: p.cmd,
          args: p.args,
          cwd: p.cwd,
        })),
      }),
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/sandboxes/{id}/processes/{process}",
      summary: "Signal a process (by pid, or by tag)",
      tag: "Commands",
      auth: "api_key",
      params: z.object({ id: z.string().min(1), process: z.string().min(1).max(128) }),
      query: z.object({ signal: SignalNameSchema.default("SIGKILL") }),
      responses: { 204: { description: "Signalled" } },
      handler: async (ctx) => {
        const selector = /^\d+$/.test(ctx.params.process)
          ? { pid: Number(ctx.params.process) }
          : { tag: ctx.params.process };
        await sandboxes.guest.killProcess(ctx.principal, ctx.params.id, selector, ctx.query.signal);
      },
    }),
    defineRoute({
      method: "PUT",
      path: "/v1/sandboxes/{id}/files",
      summary: "Upload a file (the request body, streamed)",
      tag: "Files",
      auth: "api_key",
      params: IdParamsSchema,
      query: PathQuerySchema,
      bodyKind: "binary",
      responses: {
        200: { description: "Written", schema: FileWrittenSchema },
      },
      handler: async (ctx) => {
        const res = await sandboxes.guest.writeFile(
          ctx.principal,
          ctx.params.id,
          ctx.query.path,
          ctx.query.user,
          ctx.body as Readable,
        );
        return { path: res.path, size: Number(res.size) };
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}/files",
      summary: "Download a file (streamed)",
      tag: "Files",
      auth: "api_key",
      params: IdParamsSchema,
      query: PathQuerySchema,
      responses: { 200: { description: "The file's bytes", binary: true } },
      handler: async (ctx) => {
        const chunks = await sandboxes.guest.readFile(
          ctx.principal,
          ctx.params.id,
          ctx.query.path,
          ctx.query.user,
        );
        ctx.reply.header("content-type", "application/octet-stream");
        return ctx.reply.send(Readable.from(chunks));
      },
    }),
    defineRoute({
      method: "DELETE",
      path: "/v1/sandboxes/{id}/files",
      summary: "Remove a file or directory",
      tag: "Files",
      auth: "api_key",
      params: IdParamsSchema,
      query: PathQuerySchema,
      responses: { 204: { description: "Removed" } },
      handler: async (ctx) => {
        await sandboxes.guest.removePath(ctx.principal, ctx.params.id, ctx.query.path, ctx.query.user);
      },
    }),
    defineRoute({
      method: "GET",
      path: "/v1/sandboxes/{id}/files/list",
      summary: "List a directory",
      tag: "Files",
      auth: "api_key",
      params: IdParamsSchema,
      query: ListDirQuerySchema,
      responses: {
        200: {
          description: "Entries",
          schema: listSchema(EntrySchema),
        },
      },
      handler: async (ctx) => ({
        items: (
          await sandboxes.guest.listDir(
            ctx.principal,
            ctx.params.id,
            ctx.query.path,
            ctx.query.depth,
            ctx.query.user,
          )
        ).map((e) => ({
          name: e.name,
          path: e.path,
          type: ENTRY_TYPE[e.type] ?? "unknown",
          size: Number(e.size),
          mode: e.mode,
          owner: e.owner,
          modified_at: e.modifiedAt ? timestampDate(e.modifiedAt).toISOString() : null,
        })),
      }),
    }),
    defineRoute({
      method: "POST",
      path: "/v1/sandboxes/{id}/files/mkdir",
      summary: "Make a directory (and its parents)",
      tag: "Files",
      auth: "api_key",
      params: IdParamsSchema,
      body: MakeDirBodySchema,
      responses: {
        200: { description: "Whether it was created", schema: DirCreatedSchema },
      },
      handler: async (ctx) => ({
        created: await sandboxes.guest.makeDir(ctx.principal, ctx.params.id, ctx.body.path, ctx.body.user),
      }),
    }),
  ];
}
