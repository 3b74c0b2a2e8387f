import { parseArgs } from "node:util";
import { createLogger, WrennError } from "@wrenn/shared";
import { ensureAdminUserCommand, resetPasswordCommand } from "./admin-commands.js";
import { bootstrapAdminTeam } from "./bootstrap.js";
import { controlPlaneConfigFromEnv, parseControlPlaneConfig } from "./config.js";
import { CONTROL_PLANE_VERSION, createControlPlane } from "./create-control-plane.js";
import type { Extension } from "./extensions.js";

export interface RunOptions {
  extensions?: Extension[];
  version?: string;
  argv?: string[];
  env?: NodeJS.ProcessEnv;
}

const USAGE = `usage: wrenn-cp [serve | bootstrap [team-name] | admin-user | reset-password [--email E] [--new-api-key] | migrate]
  serve           run the API (default)
  bootstrap       create the admin team, its first API key and user admin@localhost; print them (once)
  admin-user      give the admin team user admin@localhost if it has none; print its password
  reset-password  set a new random password (default admin@localhost) and print it;
                  --new-api-key also mints and prints an admin-team API key
  migrate         apply database migrations and exit`;

const ONE_SHOT = new Set(["bootstrap", "migrate", "admin-user", "reset-password"]);

/**
 * The entry point a product calls: reads the environment (the only place it is read),
 * then serves, bootstraps or migrates. Returns the process exit code for one-shot
 * commands; `serve` resolves once the server is stopped by SIGINT/SIGTERM.
 */
export async function run(options: RunOptions = {}): Promise<number> {
  const argv = options.argv ?? process.argv.slice(2);
  const env = options.env ?? process.env;
  const command = argv[0] ?? "serve";
  const config = parseControlPlaneConfig(controlPlaneConfigFromEnv(env));
  const logger = createLogger({ level: config.logLevel, fields: { svc: "wrenn-cp" } });
  const version = options.version ?? CONTROL_PLANE_VERSION;

  if (ONE_SHOT.has(command)) {
    let cp: Awaited<ReturnType<typeof createControlPlane>> | undefined;
    try {
      cp = await createControlPlane({ config, logger, version, workers: false });
      if (command === "bootstrap") {
        const created = await bootstrapAdminTeam(cp.context, argv[1]);
        process.stdout.write(`team ${created.team.id}\napi key ${created.apiKey.value}\n`);
        if (created.adminUser) {
          process.stdout.write(
            `admin user ${created.adminUser.email}\nadmin password ${created.adminUser.password}\n`,
          );
        }
      } else if (command === "admin-user") {
        process.stdout.write(await ensureAdminUserCommand(cp.context));
      } else if (command === "reset-password") {
        const { values } = parseArgs({
          args: argv.slice(1),
          options: { email: { type: "string" }, "new-api-key": { type: "boolean", default: false } },
        });
        process.stdout.write(
          await resetPasswordCommand(cp.context, { email: values.email, newApiKey: values["new-api-key"] }),
        );
      }
      return 0;
    } catch (err) {
      process.stderr.write(`${WrennError.from(err).message}\n`);
      return 1;
    } finally {
      await cp?.stop();
    }
  }
  if (command !== "serve") {
    process.stderr.write(`${USAGE}\n`);
    return 2;
  }

  const cp = await createControlPlane({ config, logger, version, extensions: options.extensions ?? [] });
  await cp.start();
  // Tests and `wrenn up` read the URL from this line.
  if (cp.tlsUrl) process.stdout.write(`wrenn-cp tls listening on ${cp.tlsUrl}\n`);
  process.stdout.write(`wrenn-cp listening on ${cp.url}\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      process.on(signal, () => {
        if (stopping) return;
        stopping = true;
        cp.stop().then(
          () => resolve(0),
          (err: unknown) => {
            logger.error("shutdown failed", { err });
            resolve(1);
          },
        );
      });
    }
  });
}
