import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { credentialsPath } from "@wrenn/sdk/node";
import { CliError, type CliIo, UsageError } from "../cli-io.js";
import { parseCommand } from "../command-context.js";
import { REPO_ROOT } from "../repo-paths.js";

export const ADMIN_USAGE = `wrenn admin <command>

  reset-password [--email E] [--new-api-key]
      on the control plane's host, with no API key: set a new random password for a user
      (default admin@localhost, the first user made by make up) and print it. --new-api-key
      also mints an admin-team API key and writes it to $WRENN_DIR/credentials.env.
      Opens the control plane's database directly (DATABASE_URL, else the PGlite directory
      WRENN_CP_PGLITE_DIR or $WRENN_DIR/cp/pglite); an embedded database is refused while
      the control plane runs: stop make up first.`;

const CP_MAIN = join(REPO_ROOT, "packages/control-plane/src/main.ts");

/** Runs the control plane's one-shot `reset-password` command with this environment. */
function runControlPlaneCommand(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ["--import", "tsx", CP_MAIN, ...args],
      { cwd: REPO_ROOT, env: { ...env, WRENN_LOG_LEVEL: env.WRENN_LOG_LEVEL ?? "error" } },
      (err, stdout, stderr) => {
        if (err) {
          reject(
            new CliError(
              "failed_precondition",
              stderr.trim().split("\n").at(-1) || err.message,
              "run this on the control plane's host with its environment (DATABASE_URL or WRENN_DIR)",
            ),
          );
        } else resolve(stdout);
      },
    );
  });
}

/** Sets WRENN_API_KEY in the credentials file, keeping its other lines. */
function writeApiKey(path: string, key: string): void {
  const lines = existsSync(path)
    ? readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
    : [];
  const kept = lines.filter((l) => !l.startsWith("WRENN_API_KEY="));
  writeFileSync(path, `${[...kept, `WRENN_API_KEY=${key}`].join("\n")}\n`, { mode: 0o600 });
}

export async function adminCommand(io: CliIo, sub: string | undefined, args: string[]): Promise<number> {
  if (sub !== "reset-password") {
    if (sub === undefined || sub === "help") {
      io.stdout.write(`${ADMIN_USAGE}\n`);
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown command: admin ${sub}`);
  }
  const { values, ctx } = parseCommand(io, args, {
    email: { type: "string" },
    "new-api-key": { type: "boolean", default: false },
  });
  const cpArgs = ["reset-password"];
  if (typeof values.email === "string") cpArgs.push("--email", values.email);
  if (values["new-api-key"] === true) cpArgs.push("--new-api-key");
  const out = await runControlPlaneCommand(cpArgs, io.env);
  const field = (name: string) => new RegExp(`^${name} (\\S+)$`, "m").exec(out)?.[1];
  const result = {
    email: field("user") ?? "",
    password: field("password") ?? "",
    apiKey: field("api key") ?? null,
    credentialsFile: null as string | null,
  };
  if (result.apiKey) {
    result.credentialsFile = credentialsPath(io.env);
    writeApiKey(result.credentialsFile, result.apiKey);
  }
  ctx.print(result, () =>
    [
      `user     ${result.email}`,
      `password ${result.password}   (shown once)`,
      ...(result.apiKey ? [`api key  ${result.apiKey}   (written to ${result.credentialsFile})`] : []),
    ].join("\n"),
  );
  return 0;
}
