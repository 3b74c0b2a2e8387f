import { once } from "node:events";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as NodeReadableStream } from "node:stream/web";
import {
  SANDBOX_STATES,
  Sandbox,
  type SandboxInfo,
  type SandboxState,
  WrennConnectionError,
} from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { intFlag, parseCommand, required, str, strs } from "../command-context.js";
import { commandLineOf } from "../command-line.js";
import { formatAge, formatTable, parsePairs } from "../format.js";
import {
  CREATE_NETWORK_FLAGS,
  createNetworkOf,
  placeholderInfo,
  sandboxInfo,
  sandboxNetwork,
} from "./sandbox-network.js";
import { parseVolumeMount } from "./volume.js";

export const SANDBOX_USAGE = `wrenn sandbox <command>

  create [<template> | --template T | --snapshot S] [--vcpus N] [--memory MiB] [--disk MiB]
         [--timeout SEC] [--on-timeout destroy|pause] [--env K=V]... [--metadata K=V]...
         [--volume NAME:PATH]...   mounts the team's volume NAME at PATH in the guest
         [--allow-out X]... [--deny-out Y]... [--no-internet]   egress policy (IPv4, CIDRs;
                     domains in --allow-out need --no-internet or --deny-out 0.0.0.0/0)
         [--private]   proxied requests need the sandbox's traffic access token
         [--mask-host HOST]   Host header proxied requests get
  info <id>          state, size and network policy
  network <id> [--allow-out X]... [--deny-out Y]... [--no-internet] | --open
                     replaces the whole egress policy (no flags: shows it)
  ls [--state running,paused] [--metadata K=V]... [--all]
  exec <id> [--user U] [--cwd DIR] [--env K=V]... [--timeout MS] [--stdin] -- <command…>
                     one <command> word is a shell command line ('ls | wc -l'); several are
                     an argv, passed exactly (sh -c 'echo hi > f'); output streams as it
                     comes; exits with the command's exit code
  cp <src> <dst>     one side is <id>:<path>; a local '-' is stdin/stdout
  pause <id>…   resume <id>… [--timeout SEC]   rm <id>…
  shell <id> [--cmd PROGRAM] [--user U] [--cwd DIR]   an interactive terminal

Every command takes --json, --api-url URL, --api-key KEY.`;

function sandboxRows(items: SandboxInfo[]): string {
  return formatTable(
    ["ID", "STATE", "TEMPLATE", "VCPUS", "MEMORY", "CREATED", "METADATA"],
    items.map((s) => [
      s.sandboxId,
      s.state,
      s.template,
      String(s.vcpus),
      `${s.memoryMiB}MiB`,
      formatAge(s.createdAt),
      Object.entries(s.metadata)
        .map(([k, v]) => `${k}=${v}`)
        .join(","),
    ]),
  );
}

async function create(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    template: { type: "string" },
    snapshot: { type: "string" },
    vcpus: { type: "string" },
    memory: { type: "string" },
    disk: { type: "string" },
    timeout: { type: "string" },
    "on-timeout": { type: "string" },
    env: { type: "string", multiple: true },
    metadata: { type: "string", multiple: true },
    volume: { type: "string", multiple: true },
    ...CREATE_NETWORK_FLAGS,
  });
  const onTimeout = str(values, "on-timeout");
  if (onTimeout !== undefined && onTimeout !== "destroy" && onTimeout !== "pause") {
    throw new UsageError("--on-timeout must be destroy or pause");
  }
  if (positionals.length > 1 || (positionals[0] !== undefined && str(values, "template") !== undefined)) {
    throw new UsageError("name the template once: wrenn sandbox create <template> (or --template T)");
  }
  const client = await ctx.client();
  const sandbox = await ctx.step("creating sandbox", () =>
    Sandbox.create({
      client,
      template: str(values, "template") ?? positionals[0],
      snapshot: str(values, "snapshot"),
      vcpus: intFlag(str(values, "vcpus"), "vcpus"),
      memoryMiB: intFlag(str(values, "memory"), "memory"),
      diskMiB: intFlag(str(values, "disk"), "disk"),
      timeoutSec: intFlag(str(values, "timeout"), "timeout"),
      onTimeout,
      envs: parsePairs(strs(values, "env"), "env"),
      metadata: parsePairs(strs(values, "metadata"), "metadata"),
      volumeMounts: volumeMountsOf(strs(values, "volume")),
      network: createNetworkOf(values),
    }),
  );
  const created = { ...sandbox.info, trafficAccessToken: sandbox.trafficAccessToken };
  ctx.print(created, () =>
    sandbox.trafficAccessToken
      ? `${sandbox.sandboxId}\ntraffic access token: ${sandbox.trafficAccessToken}`
      : sandbox.sandboxId,
  );
  return 0;
}

function volumeMountsOf(specs: string[] | undefined): Record<string, string> | undefined {
  if (!specs?.length) return undefined;
  const mounts: Record<string, string> = {};
  for (const spec of specs) {
    const { volume, path } = parseVolumeMount(spec);
    if (path in mounts) throw new UsageError(`--volume: ${path} is mounted twice`);
    mounts[path] = volume;
  }
  return mounts;
}

async function list(io: CliIo, args: string[]): Promise<number> {
  const { values, ctx } = parseCommand(io, args, {
    state: { type: "string" },
    metadata: { type: "string", multiple: true },
    all: { type: "boolean", default: false },
  });
  const state = str(values, "state")?.split(",").filter(Boolean) as SandboxState[] | undefined;
  const items = await Sandbox.list({
    client: await ctx.client(),
    // Stopped sandboxes stay listed by the API; people mostly want the live ones.
    state: state ?? (values.all ? undefined : SANDBOX_STATES.filter((s) => s !== "stopped")),
    metadata: parsePairs(strs(values, "metadata"), "metadata"),
  });
  ctx.print(items, () => (items.length === 0 ? "no sandboxes" : sandboxRows(items)));
  return 0;
}

async function exec(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    user: { type: "string" },
    cwd: { type: "string" },
    env: { type: "string", multiple: true },
    timeout: { type: "string" },
    stdin: { type: "boolean", default: false },
  });
  const id = required(positionals, 0, "id");
  const command = commandLineOf(positionals.slice(1));
  if (!command) throw new UsageError("missing <command> (wrenn sandbox exec <id> -- <command…>)");
  const sandbox = new Sandbox(await ctx.client(), placeholderInfo(id));
  // Output streams as it is written, unless --json wants it whole.
  const handle = await sandbox.commands.run(command, {
    background: true,
    user: str(values, "user"),
    cwd: str(values, "cwd"),
    envs: parsePairs(strs(values, "env"), "env"),
    timeoutMs: intFlag(str(values, "timeout"), "timeout") ?? 0,
    onStdout: ctx.json ? undefined : (d) => io.stdout.write(d),
    onStderr: ctx.json ? undefined : (d) => io.stderr.write(d),
  });
  if (values.stdin) {
    for await (const chunk of io.stdin) handle.sendStdin(Buffer.from(chunk as Buffer));
  }
  handle.closeStdin();
  const res = await handle.wait();
  if (ctx.json) {
    const { stdoutBytes: _o, stderrBytes: _e, ...plain } = res;
    ctx.print(plain, () => "");
  } else if (res.error && !/^exit status \d+$/.test(res.error)) {
    io.stderr.write(`wrenn: ${res.error}\n`);
  }
  if (res.exitCode >= 0 && res.exitCode <= 255) return res.exitCode;
  return 1;
}

async function shell(io: CliIo, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(io, args, {
    user: { type: "string" },
    cwd: { type: "string" },
    cmd: { type: "string" },
  });
  const id = required(positionals, 0, "id");
  const sandbox = new Sandbox(await ctx.client(), placeholderInfo(id));
  const stdin = io.stdin as NodeJS.ReadStream;
  const stdout = io.stdout as NodeJS.WriteStream;
  const size = () => ({ cols: stdout.columns || 80, rows: stdout.rows || 24 });
  const pty = await sandbox.pty.create({
    ...size(),
    cmd: str(values, "cmd"),
    user: str(values, "user"),
    cwd: str(values, "cwd"),
    onData: (d) => io.stdout.write(d),
  });
  const raw = Boolean(stdin.isTTY && stdin.setRawMode);
  if (raw) stdin.setRawMode(true);
  // Keys typed (or a resize) while the stream closes have nowhere to go; `pty.wait()` then
  // reports whether the shell exited or the connection was lost.
  const forward = (send: () => void) => {
    try {
      send();
    } catch (err) {
      if (!(err instanceof WrennConnectionError)) throw err;
    }
  };
  const onInput = (chunk: Buffer) => forward(() => pty.sendInput(chunk));
  // Piped input ends: an EOT (Ctrl-D) lets the shell see end of input and exit.
  const onEnd = () => forward(() => pty.sendInput("\x04"));
  const onResize = () => forward(() => pty.resize(size()));
  stdin.on("data", onInput);
  stdin.once("end", onEnd);
  stdout.on("resize", onResize);
  try {
    const exit = await pty.wait();
    return exit.exitCode >= 0 && exit.exitCode <= 255 ? exit.exitCode : 1;
  } finally {
    if (raw) stdin.setRawMode(false);
    stdin.off("data", onInput);
    stdin.off("end", onEnd);
    stdout.off("resize", onResize);
    stdin.pause();
  }
}

/** `<id>:<path>` names a path in a sandbox; anything else (including `./a:b`, `/a:b`) is local. */
export function parseCpTarget(spec: string): { sandboxId: string; path: string } | { local: string } {
  const m = /^([a-z0-9][a-z0-9-]{0,127}):(.+)$/.exec(spec);
  if (m?.[1] && m[2]) return { sandboxId: m[1], path: m[2] };
  return { local: spec };
}

async function isDirectory(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isDirectory() ?? false;
}

async function copy(io: CliIo, args: string[]): Promise<number> {
  const { positionals, ctx } = parseCommand(io, args, {});
  const src = parseCpTarget(required(positionals, 0, "src"));
  const dst = parseCpTarget(required(positionals, 1, "dst"));
  const client = await ctx.client();
  if ("local" in src && "sandboxId" in dst) {
    const path = dst.path.endsWith("/") && src.local !== "-" ? dst.path + basename(src.local) : dst.path;
    const input = src.local === "-" ? io.stdin : createReadStream(src.local);
    const body = Readable.toWeb(Readable.from(input)) as ReadableStream<Uint8Array>;
    const sandbox = new Sandbox(client, placeholderInfo(dst.sandboxId));
    const written = await ctx.step(`uploading to ${dst.sandboxId}:${path}`, () =>
      sandbox.files.write(path, body, { timeoutMs: 0 }),
    );
    ctx.print(
      { direction: "upload", sandboxId: dst.sandboxId, ...written },
      () => `${written.size} bytes → ${dst.sandboxId}:${written.path}`,
    );
    return 0;
  }
  if ("sandboxId" in src && "local" in dst) {
    const sandbox = new Sandbox(client, placeholderInfo(src.sandboxId));
    const stream = await sandbox.files.read(src.path, { format: "stream", timeoutMs: 0 });
    const source = Readable.fromWeb(stream as NodeReadableStream);
    let size = 0;
    if (dst.local === "-") {
      for await (const chunk of source) {
        size += (chunk as Buffer).length;
        if (!io.stdout.write(chunk as Buffer)) await once(io.stdout, "drain");
      }
      return 0;
    }
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        size += chunk.length;
        done(null, chunk);
      },
    });
    const local = (await isDirectory(dst.local)) ? join(dst.local, basename(src.path)) : dst.local;
    await ctx.step(`downloading ${src.sandboxId}:${src.path}`, () =>
      pipeline(source, counter, createWriteStream(local)),
    );
    ctx.print(
      { direction: "download", sandboxId: src.sandboxId, path: src.path, local, size },
      () => `${src.sandboxId}:${src.path} → ${local} (${size} bytes)`,
    );
    return 0;
  }
  throw new UsageError("cp needs exactly one side in a sandbox: <id>:<path>");
}

type Lifecycle = "pause" | "resume" | "rm";

async function lifecycle(io: CliIo, action: Lifecycle, args: string[]): Promise<number> {
  const { values, positionals, ctx } = parseCommand(
    io,
    args,
    action === "resume" ? { timeout: { type: "string" } } : {},
  );
  if (positionals.length === 0) throw new UsageError("missing <id>");
  const client = await ctx.client();
  const results: { sandboxId: string; state: string }[] = [];
  for (const id of positionals) {
    const label = { pause: "pausing", resume: "resuming", rm: "removing" }[action];
    await ctx.step(`${label} ${id}`, async () => {
      if (action === "rm") {
        await Sandbox.kill(id, { client });
        results.push({ sandboxId: id, state: "stopped" });
        return;
      }
      const sandbox = new Sandbox(client, placeholderInfo(id));
      const info =
        action === "pause"
          ? await sandbox.pause()
          : await sandbox.resume({ timeoutSec: intFlag(str(values, "timeout"), "timeout") });
      results.push({ sandboxId: id, state: info.state });
    });
  }
  ctx.print(results, () => results.map((r) => `${r.sandboxId} ${r.state}`).join("\n"));
  return 0;
}

export async function sandboxCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "create":
      return create(io, args);
    case "ls":
    case "list":
      return list(io, args);
    case "exec":
      return exec(io, args);
    case "cp":
      return copy(io, args);
    case "pause":
    case "resume":
    case "rm":
      return lifecycle(io, sub, args);
    case "kill":
      return lifecycle(io, "rm", args);
    case "shell":
      return shell(io, args);
    case "info":
      return sandboxInfo(io, args);
    case "network":
      return sandboxNetwork(io, args);
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: sandbox ${sub}`);
      io.stdout.write(`${SANDBOX_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
