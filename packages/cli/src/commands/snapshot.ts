import { Snapshot } from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { parseCommand, required } from "../command-context.js";
import { formatAge, formatTable } from "../format.js";

export const SNAPSHOT_USAGE = `wrenn snapshot <command>

  create <sandbox-id> <name>   freeze a running or paused sandbox into a named snapshot
  ls                           the team's snapshots
  rm <name>… [--force]         delete (--force: even while sandboxes use it)

Start a sandbox from one with: wrenn sandbox create --snapshot <name>`;

export async function snapshotCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "create": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const sandboxId = required(positionals, 0, "sandbox-id");
      const name = required(positionals, 1, "name");
      const client = await ctx.client();
      const snap = await ctx.step(`snapshotting ${sandboxId} as ${name}`, () =>
        Snapshot.create(sandboxId, name, { client }),
      );
      ctx.print(snap, () => snap.name);
      return 0;
    }
    case "ls":
    case "list": {
      const { ctx } = parseCommand(io, args, {});
      const items = await Snapshot.list({ client: await ctx.client() });
      ctx.print(items, () =>
        items.length === 0
          ? "no snapshots"
          : formatTable(
              ["NAME", "FROM SANDBOX", "VCPUS", "MEMORY", "CREATED"],
              items.map((s) => [
                s.name,
                s.sourceSandboxId ?? "",
                String(s.vcpus ?? ""),
                s.memoryMiB ? `${s.memoryMiB}MiB` : "",
                formatAge(s.createdAt),
              ]),
            ),
      );
      return 0;
    }
    case "rm":
    case "delete": {
      const { values, positionals, ctx } = parseCommand(io, args, {
        force: { type: "boolean", default: false },
      });
      if (positionals.length === 0) throw new UsageError("missing <name>");
      const client = await ctx.client();
      for (const name of positionals) await Snapshot.delete(name, { client, force: values.force === true });
      ctx.print(
        positionals.map((name) => ({ name, deleted: true })),
        () => positionals.map((n) => `deleted ${n}`).join("\n"),
      );
      return 0;
    }
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: snapshot ${sub}`);
      io.stdout.write(`${SNAPSHOT_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
