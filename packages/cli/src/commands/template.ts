import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type BuildInfo, Templates, WrennBuildError } from "@wrenn/sdk";
import { parseBuildFile } from "../build-file.js";
import { BuildFileError } from "../build-file-lines.js";
import { formatBuildDone, formatBuildFailure, formatLogEntry } from "../build-progress.js";
import { CliError, type CliIo, UsageError } from "../cli-io.js";
import { parseCommand, required, str, strs } from "../command-context.js";
import { formatAge, formatBytes, formatTable } from "../format.js";

export const TEMPLATE_USAGE = `wrenn template <command>

  build [-f wrenn.template] [--name N] [--tag T]... [--no-cache]
                        build a template from a build file (progress per step; the
                        file's format: packages/cli/README.md)
  ls                    templates: images, snapshots and built ones
  rm <name>…            delete built templates (sandboxes made from them keep running)
  logs <build-id> [--follow]   a build's log
  builds <name>         a template's builds, newest first

Every command takes --json, --api-url URL, --api-key KEY.
Start a sandbox from a template with: wrenn sandbox create <name>`;

const DEFAULT_BUILD_FILE = "wrenn.template";
/** How often a running build's log is polled. */
const POLL_MS = 500;

async function readBuildFile(path: string) {
  let source: string;
  try {
    source = await readFile(path, "utf8");
  } catch (err) {
    throw new CliError(
      "not_found",
      `cannot read the build file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      `write one (see packages/cli/README.md) or pass -f <path>`,
    );
  }
  try {
    return parseBuildFile(source);
  } catch (err) {
    if (err instanceof BuildFileError) {
      throw new CliError(
        err.code,
        `${path}: ${err.message}`,
        "see the build file format in packages/cli/README.md",
      );
    }
    throw err;
  }
}

async function build(io: CliIo, args: string[]): Promise<number> {
  const { values, ctx } = parseCommand(io, args, {
    file: { type: "string", short: "f", default: DEFAULT_BUILD_FILE },
    name: { type: "string" },
    tag: { type: "string", multiple: true },
    "no-cache": { type: "boolean", default: false },
  });
  const file = resolve(str(values, "file") ?? DEFAULT_BUILD_FILE);
  const spec = await readBuildFile(file);
  const name = str(values, "name") ?? spec.name;
  if (!name) throw new UsageError("no template name: pass --name or write NAME <name> in the build file");
  const tags = [...(spec.tags ?? []), ...(strs(values, "tag") ?? [])];
  // With --json, stdout carries only the result; progress goes to stderr.
  const out = ctx.json ? io.stderr : io.stdout;
  const started = Date.now();
  const client = await ctx.client();
  try {
    const done = await Templates.build(
      { ...spec, name, tags, force: values["no-cache"] === true },
      {
        client,
        contextDir: dirname(file),
        pollMs: POLL_MS,
        onFiles: (f) =>
          out.write(
            `  · COPY source ${f.src}: ${formatBytes(f.bytes)} (sha256 ${f.hash.slice(0, 12)}), ${f.uploaded ? "uploaded" : "already on the server"}\n`,
          ),
        onLog: (entry) => {
          const line = formatLogEntry(entry);
          if (line !== undefined) out.write(`${line}\n`);
        },
      },
    );
    ctx.print(done, () => formatBuildDone(done, Date.now() - started));
    return 0;
  } catch (err) {
    if (!(err instanceof WrennBuildError)) throw err;
    io.stderr.write(`${formatBuildFailure(err.build)}\n`);
    if (ctx.json) io.stdout.write(`${JSON.stringify(err.build, null, 2)}\n`);
    return 1;
  }
}

function templateRows(items: Awaited<ReturnType<typeof Templates.list>>): string {
  if (items.length === 0) return "no templates";
  return formatTable(
    ["NAME", "KIND", "STATUS", "TAGS", "VCPUS", "MEMORY", "DISK", "CREATED"],
    items.map((t) => [
      t.name,
      t.kind,
      t.buildStatus ?? (t.kind === "built" ? "" : "ready"),
      t.tags.join(","),
      t.vcpus === null ? "" : String(t.vcpus),
      t.memoryMiB ? `${t.memoryMiB}MiB` : "",
      t.diskMiB ? `${t.diskMiB}MiB` : "",
      formatAge(t.createdAt),
    ]),
  );
}

function buildRows(items: BuildInfo[]): string {
  if (items.length === 0) return "no builds";
  return formatTable(
    ["BUILD", "STATUS", "TAGS", "CACHED", "CREATED", "ERROR"],
    items.map((b) => [
      b.buildId,
      b.status,
      b.tags.join(","),
      `${b.stepsCached}/${b.stepsTotal}`,
      formatAge(b.createdAt),
      b.error?.message.split("\n")[0] ?? "",
    ]),
  );
}

async function logs(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    follow: { type: "boolean", short: "F", default: false },
  });
  const buildId = required(positionals, 0, "build-id");
  const client = await ctx.client();
  const print = (entries: Awaited<ReturnType<typeof Templates.logs>>["entries"]) => {
    for (const entry of entries) {
      if (ctx.json) io.stdout.write(`${JSON.stringify(entry)}\n`);
      else
        io.stdout.write(`${entry.level === "error" ? `error: ${entry.message}` : formatLogEntry(entry)}\n`);
    }
  };
  if (values.follow) {
    try {
      await Templates.waitForBuild(buildId, { client, pollMs: POLL_MS, onLog: (e) => print([e]) });
      return 0;
    } catch (err) {
      if (err instanceof WrennBuildError) return 1;
      throw err;
    }
  }
  let offset = 0;
  for (;;) {
    const page = await Templates.logs(buildId, offset, { client });
    print(page.entries);
    offset = page.nextOffset;
    if (page.entries.length === 0) {
      if (!ctx.json) io.stderr.write(`build ${buildId}: ${page.status}\n`);
      return page.status === "error" ? 1 : 0;
    }
  }
}

export async function templateCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "build":
      return build(io, args);
    case "ls":
    case "list": {
      const { ctx } = parseCommand(io, args, {});
      const items = await Templates.list({ client: await ctx.client() });
      ctx.print(items, () => templateRows(items));
      return 0;
    }
    case "rm":
    case "delete": {
      const { positionals, ctx } = parseCommand(io, args, {});
      if (positionals.length === 0) throw new UsageError("missing <name>");
      const client = await ctx.client();
      for (const name of positionals) await Templates.delete(name, { client });
      ctx.print(
        positionals.map((name) => ({ name, deleted: true })),
        () => positionals.map((n) => `deleted ${n}`).join("\n"),
      );
      return 0;
    }
    case "logs":
      return logs(io, args);
    case "builds": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const items = await Templates.builds(required(positionals, 0, "name"), { client: await ctx.client() });
      ctx.print(items, () => buildRows(items));
      return 0;
    }
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: template ${sub}`);
      io.stdout.write(`${TEMPLATE_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
