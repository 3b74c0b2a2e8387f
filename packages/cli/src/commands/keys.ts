import { ApiKeys } from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { parseCommand, required } from "../command-context.js";
import { formatAge, formatTable } from "../format.js";

export const KEYS_USAGE = `wrenn keys <command>

  create <name>     a new API key for this team (the key is printed once)
  ls                the team's keys (never the keys themselves)
  revoke <id>…      revoke keys by id`;

export async function keysCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "create": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const created = await ApiKeys.create(required(positionals, 0, "name"), { client: await ctx.client() });
      ctx.print(created, () => created.key);
      return 0;
    }
    case "ls":
    case "list": {
      const { ctx } = parseCommand(io, args, {});
      const items = await ApiKeys.list({ client: await ctx.client() });
      ctx.print(items, () =>
        formatTable(
          ["ID", "NAME", "PREFIX", "CREATED", "LAST USED", "REVOKED"],
          items.map((k) => [
            k.id,
            k.name,
            k.prefix,
            formatAge(k.createdAt),
            k.lastUsedAt ? formatAge(k.lastUsedAt) : "never",
            k.revokedAt ? formatAge(k.revokedAt) : "",
          ]),
        ),
      );
      return 0;
    }
    case "revoke":
    case "rm": {
      const { positionals, ctx } = parseCommand(io, args, {});
      if (positionals.length === 0) throw new UsageError("missing <id>");
      const client = await ctx.client();
      for (const id of positionals) await ApiKeys.revoke(id, { client });
      ctx.print(
        positionals.map((id) => ({ id, revoked: true })),
        () => positionals.map((id) => `revoked ${id}`).join("\n"),
      );
      return 0;
    }
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: keys ${sub}`);
      io.stdout.write(`${KEYS_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
