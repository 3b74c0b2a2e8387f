import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { basename } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import { type VolumeEntry, Volumes } from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { intFlag, parseCommand, required, str } from "../command-context.js";
import { formatAge, formatBytes, formatTable } from "../format.js";

export const VOLUME_USAGE = `wrenn volume <command>

  create <name> [--size MiB]           a named persistent volume of the team
  ls                                   the team's volumes
  rm <name>…                           delete (refused while a sandbox mounts it)
  files <name> [path] [--depth N]      list a directory of the volume (default /)
  put <name> <local|-> <path> [--force]
                                       upload a file ('-' is stdin; a path ending in '/'
                                       takes the local file's name); --force overwrites
  get <name> <path> [local|-]          download a file (default '-', stdout)
  mkdir <name> <path>                  make a directory with its parents

Mount volumes into a sandbox with: wrenn sandbox create --volume <name>:<path>
Every command takes --json, --api-url URL, --api-key KEY.`;

/** `name:/guest/path` of `wrenn sandbox create --volume`, split at the first colon. */
export function parseVolumeMount(spec: string): { volume: string; path: string } {
  const colon = spec.indexOf(":");
  const volume = spec.slice(0, colon);
  const path = spec.slice(colon + 1);
  if (colon <= 0 || !path.startsWith("/")) {
    throw new UsageError(`--volume ${JSON.stringify(spec)}: expected <name>:<absolute guest path>`);
  }
  return { volume, path };
}

function entryRows(entries: VolumeEntry[]): string {
  return formatTable(
    ["TYPE", "SIZE", "MODE", "OWNER", "MODIFIED", "PATH"],
    entries.map((e) => [
      e.type,
      e.type === "directory" ? "-" : formatBytes(e.size),
      e.mode.toString(8).padStart(4, "0"),
      `${e.uid}:${e.gid}`,
      formatAge(e.mtime),
      e.type === "symlink" && e.target !== undefined ? `${e.path} -> ${e.target}` : e.path,
    ]),
  );
}

async function put(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    force: { type: "boolean", default: false },
  });
  const name = required(positionals, 0, "name");
  const local = required(positionals, 1, "local");
  const target = required(positionals, 2, "path");
  const path = target.endsWith("/") && local !== "-" ? target + basename(local) : target;
  const volume = await Volumes.get(name, { client: await ctx.client() });
  const input = local === "-" ? io.stdin : createReadStream(local);
  const body = Readable.toWeb(Readable.from(input)) as ReadableStream<Uint8Array>;
  const entry = await ctx.step(`uploading to ${name}:${path}`, () =>
    volume.writeFile(path, body, { force: values.force === true, timeoutMs: 0 }),
  );
  ctx.print(entry, () => `${entry.size} bytes → ${name}:${entry.path}`);
  return 0;
}

async function get(io: CliIo, args: string[]): Promise<number> {
  const { positionals, ctx } = parseCommand(io, args, {});
  const name = required(positionals, 0, "name");
  const path = required(positionals, 1, "path");
  const local = positionals[2] ?? "-";
  const volume = await Volumes.get(name, { client: await ctx.client() });
  const stream = await volume.readFile(path, { format: "stream", timeoutMs: 0 });
  const source = Readable.fromWeb(stream as NodeReadableStream);
  if (local === "-") {
    for await (const chunk of source) {
      if (!io.stdout.write(chunk as Buffer)) await once(io.stdout, "drain");
    }
    return 0;
  }
  let size = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      done(null, chunk);
    },
  });
  await ctx.step(`downloading ${name}:${path}`, () => pipeline(source, counter, createWriteStream(local)));
  ctx.print({ volume: name, path, local, size }, () => `${name}:${path} → ${local} (${size} bytes)`);
  return 0;
}

export async function volumeCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "create": {
      const { values, positionals, ctx } = parseCommand(io, args, { size: { type: "string" } });
      const name = required(positionals, 0, "name");
      const client = await ctx.client();
      const volume = await ctx.step(`creating volume ${name}`, () =>
        Volumes.create({ name, sizeMiB: intFlag(str(values, "size"), "size") }, { client }),
      );
      ctx.print(volume.info, () => volume.name);
      return 0;
    }
    case "ls":
    case "list": {
      const { ctx } = parseCommand(io, args, {});
      const items = await Volumes.list({ client: await ctx.client() });
      ctx.print(items, () =>
        items.length === 0
          ? "no volumes"
          : formatTable(
              ["NAME", "ID", "SIZE", "HOST", "CREATED"],
              items.map((v) => [v.name, v.volumeId, `${v.sizeMiB}MiB`, v.hostId, formatAge(v.createdAt)]),
            ),
      );
      return 0;
    }
    case "rm":
    case "delete": {
      const { positionals, ctx } = parseCommand(io, args, {});
      if (positionals.length === 0) throw new UsageError("missing <name>");
      const client = await ctx.client();
      for (const name of positionals) await Volumes.delete(name, { client });
      ctx.print(
        positionals.map((name) => ({ name, deleted: true })),
        () => positionals.map((n) => `deleted ${n}`).join("\n"),
      );
      return 0;
    }
    case "files": {
      const { values, positionals, ctx } = parseCommand(io, args, { depth: { type: "string" } });
      const name = required(positionals, 0, "name");
      const volume = await Volumes.get(name, { client: await ctx.client() });
      const entries = await volume.list(positionals[1] ?? "/", {
        depth: intFlag(str(values, "depth"), "depth"),
      });
      ctx.print(entries, () => (entries.length === 0 ? "empty" : entryRows(entries)));
      return 0;
    }
    case "mkdir": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const name = required(positionals, 0, "name");
      const path = required(positionals, 1, "path");
      const volume = await Volumes.get(name, { client: await ctx.client() });
      const entry = await volume.makeDir(path, { force: true });
      ctx.print(entry, () => `${name}:${entry.path}`);
      return 0;
    }
    case "put":
      return put(io, args);
    case "get":
      return get(io, args);
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: volume ${sub}`);
      io.stdout.write(`${VOLUME_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
