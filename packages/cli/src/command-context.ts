import { type ParseArgsConfig, parseArgs } from "node:util";
import { ApiClient } from "@wrenn/sdk";
import { resolveConnection } from "@wrenn/sdk/node";
import { type CliIo, UsageError } from "./cli-io.js";
import { toJson } from "./format.js";
import { withSpinner } from "./spinner.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Flags every API command takes. */
const GLOBAL_OPTIONS = {
  "api-url": { type: "string" },
  "api-key": { type: "string" },
  json: { type: "boolean", default: false },
} as const satisfies Options;

export interface CommandContext {
  io: CliIo;
  json: boolean;
  /** The API client from --api-url/--api-key, else WRENN_API_URL/WRENN_API_KEY, else the credentials file. */
  client(): Promise<ApiClient>;
  /** Shows a spinner on stderr while `work` runs, when a person is watching. */
  step<T>(label: string, work: () => Promise<T>): Promise<T>;
  /** Prints `value` as JSON with --json, else `text()`. */
  print(value: unknown, text: () => string): void;
}

export type FlagValues = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Parses a subcommand's flags (plus the global ones) and builds its context. */
export function parseCommand(
  io: CliIo,
  args: string[],
  options: Options,
): { values: FlagValues; positionals: string[]; ctx: CommandContext } {
  let parsed: { values: FlagValues; positionals: string[] };
  try {
    parsed = parseArgs({
      args,
      options: { ...options, ...GLOBAL_OPTIONS },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const values = parsed.values;
  const json = values.json === true;
  let client: Promise<ApiClient> | undefined;
  const ctx: CommandContext = {
    io,
    json,
    client() {
      client ??= resolveConnection(
        { apiUrl: str(values, "api-url"), apiKey: str(values, "api-key") },
        io.env,
      ).then((c) => new ApiClient(c));
      return client;
    },
    step: (label, work) => withSpinner(io.stderr, io.isTty && !json, label, work),
    print(value, text) {
      io.stdout.write(json ? toJson(value) : `${text()}\n`);
    },
  };
  return { values, positionals: parsed.positionals, ctx };
}

export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

export function strs(values: FlagValues, name: string): string[] | undefined {
  const v = values[name];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
}

/** The n-th positional, or a usage error naming it. */
export function required(positionals: string[], index: number, name: string): string {
  const v = positionals[index];
  if (v === undefined || v === "") throw new UsageError(`missing <${name}>`);
  return v;
}

/** A whole-number flag value, or a usage error. */
export function intFlag(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value))
    throw new UsageError(`--${flag} ${JSON.stringify(value)}: expected a whole number`);
  return Number(value);
}
