import { parseArgs } from "node:util";
import { WrennError } from "@wrenn/shared";
import { formatDoctor, runDoctor } from "./commands/doctor.js";
import { imageBuild } from "./commands/image-build.js";

const USAGE = `usage: wrenn <command>

  image build [--name N]   build the guest image (cached; a no-op when unchanged)
  doctor [--json]          check this machine: node, qemu, KVM or TCG, cgroups, packages, images`;

async function main(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { name: { type: "string", default: "base" }, json: { type: "boolean", default: false } },
  });
  const [command, sub] = positionals;
  if (command === "image" && sub === "build") {
    await imageBuild({ name: values.name ?? "base" }, process.env);
    return 0;
  }
  if (command === "doctor") {
    const checks = await runDoctor(process.env);
    process.stdout.write(values.json ? `${JSON.stringify(checks, null, 2)}\n` : `${formatDoctor(checks)}\n`);
    return checks.some((c) => c.status === "fail") ? 1 : 0;
  }
  process.stderr.write(`${USAGE}\n`);
  return command ? 2 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = WrennError.from(err);
    process.stderr.write(`error [${e.code}]: ${e.message}\n`);
    process.exit(1);
  },
);
