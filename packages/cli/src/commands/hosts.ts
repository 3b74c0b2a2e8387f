import { type CliIo, UsageError } from "../cli-io.js";
import { parseCommand, required } from "../command-context.js";
import { formatAge, formatTable } from "../format.js";

export const HOSTS_USAGE = `wrenn hosts <command>

  ls                       hosts: state, tags, draining, capacity
  create <name> [--shared] a new host: prints its one-time registration token and the
                           wrenn-agent command that enrols it
  drain <id>               no new placements on it (its sandboxes stay)
  undrain <id>             take placements again
  tag <id> k=v … [k= …]    set tags (k= removes k); the others are kept`;

/** The /v1/hosts fields these commands show. */
interface HostView {
  id: string;
  name: string;
  state: string;
  url: string | null;
  tags: Record<string, string>;
  draining: boolean;
  sandbox_count: number;
  capacity: { vcpus: number; memory_mb: number };
  last_seen_at: string | null;
  agent_seen_at: string | null;
}

function tagText(tags: Record<string, string>): string {
  return Object.entries(tags)
    .map(([k, v]) => `${k}=${v}`)
    .join(",");
}

export async function hostsCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  switch (sub) {
    case "ls":
    case "list": {
      const { ctx } = parseCommand(io, args, {});
      const { items } = await (await ctx.client()).json<{ items: HostView[] }>("GET", "/v1/hosts");
      ctx.print(items, () =>
        formatTable(
          ["ID", "NAME", "STATE", "DRAINING", "TAGS", "SANDBOXES", "AGENT SEEN"],
          items.map((h) => [
            h.id,
            h.name,
            h.state,
            h.draining ? "yes" : "",
            tagText(h.tags),
            String(h.sandbox_count),
            h.agent_seen_at ? formatAge(new Date(h.agent_seen_at)) : "",
          ]),
        ),
      );
      return 0;
    }
    case "create": {
      const { positionals, values, ctx } = parseCommand(io, args, {
        shared: { type: "boolean", default: false },
      });
      const client = await ctx.client();
      const created = await client.json<{ host: HostView; registration_token: string; expires_at: string }>(
        "POST",
        "/v1/hosts",
        { json: { name: required(positionals, 0, "name"), shared: values.shared === true } },
      );
      const command = `wrenn-agent serve --register ${created.registration_token} --control-plane ${client.apiUrl} --advertise-url https://<this host>:50051`;
      ctx.print({ ...created, agent_command: command }, () =>
        [
          `host ${created.host.id} (${created.host.name})`,
          `registration token (once, until ${created.expires_at}): ${created.registration_token}`,
          "on the host, as root:",
          `  ${command}`,
        ].join("\n"),
      );
      return 0;
    }
    case "drain":
    case "undrain": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const id = required(positionals, 0, "id");
      const host = await (await ctx.client()).json<HostView>("PATCH", `/v1/hosts/${encodeURIComponent(id)}`, {
        json: { draining: sub === "drain" },
      });
      ctx.print(
        host,
        () => `${host.id} ${host.draining ? "draining: no new placements" : "takes placements"}`,
      );
      return 0;
    }
    case "tag": {
      const { positionals, ctx } = parseCommand(io, args, {});
      const id = required(positionals, 0, "id");
      if (positionals.length < 2) throw new UsageError("missing k=v");
      const client = await ctx.client();
      const path = `/v1/hosts/${encodeURIComponent(id)}`;
      const tags = { ...(await client.json<HostView>("GET", path)).tags };
      for (const pair of positionals.slice(1)) {
        const eq = pair.indexOf("=");
        if (eq <= 0) throw new UsageError(`${pair}: expected k=v (or k= to remove k)`);
        const [key, value] = [pair.slice(0, eq), pair.slice(eq + 1)];
        if (value === "") delete tags[key];
        else tags[key] = value;
      }
      const host = await client.json<HostView>("PATCH", path, { json: { tags } });
      ctx.print(host, () => `${host.id} tags: ${tagText(host.tags) || "(none)"}`);
      return 0;
    }
    default:
      if (sub !== undefined && sub !== "help") throw new UsageError(`unknown command: hosts ${sub}`);
      io.stdout.write(`${HOSTS_USAGE}\n`);
      return sub === undefined ? 2 : 0;
  }
}
