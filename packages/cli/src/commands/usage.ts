import { Usage } from "@wrenn/sdk";
import { type CliIo, UsageError } from "../cli-io.js";
import { parseCommand } from "../command-context.js";
import { formatTable } from "../format.js";

export const USAGE_USAGE = `wrenn usage [--days N]

  the team's usage per UTC day, today last (default 7 days): CPU-minutes,
  memory GiB-hours and sandbox-hours, from the control plane's sampled metrics`;

/** Two decimals, without trailing zeros. */
function num(n: number): string {
  return String(Math.round(n * 100) / 100);
}

export async function usageCommand(io: CliIo, args: string[]): Promise<number> {
  if (args[0] === "help") {
    io.stdout.write(`${USAGE_USAGE}\n`);
    return 0;
  }
  const { values, positionals, ctx } = parseCommand(io, args, { days: { type: "string", default: "7" } });
  if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
  const days = Number(values.days);
  if (!Number.isInteger(days) || days < 1 || days > 366)
    throw new UsageError("--days must be a whole number, 1–366");
  const items = await Usage.days({ client: await ctx.client(), days });
  ctx.print(items, () =>
    formatTable(
      ["DATE", "CPU-MIN", "MEM GIB-H", "SANDBOX-H"],
      items.map((d) => [d.date, num(d.cpuMinutes), num(d.memoryGibHours), num(d.sandboxHours)]),
    ),
  );
  return 0;
}
