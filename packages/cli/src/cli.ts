import { type CliIo, UsageError } from "./cli-io.js";
import { parseCommand } from "./command-context.js";
import { adminCommand } from "./commands/admin.js";
import { formatDoctor, runDoctor } from "./commands/doctor.js";
import { hostsCommand } from "./commands/hosts.js";
import { imageBuild } from "./commands/image-build.js";
import { keysCommand } from "./commands/keys.js";
import { sandboxCommand } from "./commands/sandbox.js";
import { snapshotCommand } from "./commands/snapshot.js";
import { templateCommand } from "./commands/template.js";
import { runUp } from "./commands/up.js";
import { usageCommand } from "./commands/usage.js";
import { volumeCommand } from "./commands/volume.js";
import { formatError } from "./error-format.js";

export const USAGE = `usage: wrenn <command>

  sandbox create|ls|exec|cp|pause|resume|rm|shell   sandboxes (wrenn sandbox help)
  snapshot create|ls|rm                             named snapshots (wrenn snapshot help)
  template build|ls|rm|logs|builds                  templates built from a build file (wrenn template help)
  volume create|ls|rm|files|put|get|mkdir           persistent volumes and their files (wrenn volume help)
  keys create|ls|revoke                             API keys (wrenn keys help)
  hosts ls|create|drain|undrain|tag                 hosts, enrolment tokens, draining, tags (wrenn hosts help)
  admin reset-password [--email E] [--new-api-key]  on the host, no API key: new password (and key)
  usage [--days N]          the team's CPU-minutes, memory GiB-hours, sandbox-hours per day
  up [--domain D] [--tls-port P]
                            run Wrenn here (host agent + control plane), like make up;
                            --domain also serves TLS for D and *.D (local CA) for E2B_DOMAIN
  image build [--name N]    build the guest image (cached; a no-op when unchanged)
  doctor [--json]           check this machine and the configured API

API commands read --api-url/--api-key, else WRENN_API_URL/WRENN_API_KEY, else
$WRENN_DIR/credentials.env (default ~/.wrenn). --json prints machine-readable output.`;

async function dispatch(argv: string[], io: CliIo): Promise<number> {
  const [command, sub, ...rest] = argv;
  switch (command) {
    case "sandbox":
    case "sandboxes":
      return sandboxCommand(io, sub, rest);
    case "snapshot":
    case "snapshots":
      return snapshotCommand(io, sub, rest);
    case "template":
    case "templates":
      return templateCommand(io, sub, rest);
    case "volume":
    case "volumes":
      return volumeCommand(io, sub, rest);
    case "keys":
      return keysCommand(io, sub, rest);
    case "host":
    case "hosts":
      return hostsCommand(io, sub, rest);
    case "admin":
      return adminCommand(io, sub, rest);
    case "usage":
      return usageCommand(io, argv.slice(1));
    case "image": {
      if (sub !== "build") throw new UsageError(`unknown command: image ${sub ?? ""}`.trim());
      const { values } = parseCommand(io, rest, { name: { type: "string", default: "base" } });
      await imageBuild({ name: typeof values.name === "string" ? values.name : "base" }, io.env);
      return 0;
    }
    case "up": {
      const { values } = parseCommand(io, argv.slice(1), {
        domain: { type: "string" },
        "tls-port": { type: "string" },
      });
      const tlsPort = values["tls-port"];
      if (tlsPort !== undefined && !/^\d{1,5}$/.test(String(tlsPort))) {
        throw new UsageError("--tls-port must be a port number");
      }
      return runUp({
        ...io.env,
        ...(typeof values.domain === "string" ? { WRENN_SANDBOX_DOMAIN: values.domain } : {}),
        ...(typeof tlsPort === "string" ? { WRENN_CP_TLS_PORT: tlsPort } : {}),
      });
    }
    case "doctor": {
      const { ctx } = parseCommand(io, argv.slice(1), {});
      const checks = await runDoctor(io.env);
      ctx.print(checks, () => formatDoctor(checks));
      return checks.some((c) => c.status === "fail") ? 1 : 0;
    }
    case undefined:
    case "help":
    case "--help":
    case "-h":
      io.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

/** Runs one CLI invocation; errors become one line on stderr and a non-zero exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  try {
    return await dispatch(argv, io);
  } catch (err) {
    const { line, exitCode } = formatError(err);
    io.stderr.write(`${line}\n`);
    if (io.env.WRENN_DEBUG && err instanceof Error && err.stack) io.stderr.write(`${err.stack}\n`);
    return exitCode;
  }
}
