import type { BuildSpecInput, BuildStep } from "@wrenn/api";
import { WrennError } from "@wrenn/shared";
import { z } from "zod";

/** The E2B SDK's default base, which is what Wrenn's `base` image is. */
const E2B_BASE_IMAGES = new Set(["e2bdev/base", "e2bdev/base:latest"]);

/** A step as the E2B SDK sends it; extra keys (forceUpload, gzip, resolveSymlinks) are ignored. */
const E2bStepSchema = z.object({
  type: z.string(),
  args: z.array(z.string()).default([]),
  force: z.boolean().optional(),
  filesHash: z.string().optional(),
});

export const E2bBuildStartSchema = z.object({
  fromImage: z.string().optional(),
  fromTemplate: z.string().optional(),
  fromImageRegistry: z.unknown().optional(),
  force: z.boolean().default(false),
  startCmd: z.string().optional(),
  readyCmd: z.string().optional(),
  steps: z.array(E2bStepSchema).default([]),
});
export type E2bBuildStart = z.infer<typeof E2bBuildStartSchema>;

function bad(message: string): never {
  throw new WrennError("invalid_argument", message);
}

function step(s: z.infer<typeof E2bStepSchema>, index: number): BuildStep {
  const where = `steps[${index}] (${s.type})`;
  const [a = "", b = "", c = "", d = ""] = s.args;
  switch (s.type.toUpperCase()) {
    case "RUN":
      if (!a) bad(`${where}: no command`);
      return { type: "run", command: a, ...(b ? { user: b } : {}) };
    case "COPY":
      if (!s.filesHash) bad(`${where}: no filesHash`);
      return {
        type: "copy",
        files_hash: s.filesHash,
        src: a,
        dest: b,
        ...(c ? { user: c } : {}),
        ...(d ? { mode: d } : {}),
      };
    case "ENV": {
      if (s.args.length % 2 !== 0) bad(`${where}: args must be name, value pairs`);
      const vars: Record<string, string> = {};
      for (let i = 0; i < s.args.length; i += 2) vars[s.args[i] as string] = s.args[i + 1] as string;
      return { type: "env", vars };
    }
    case "WORKDIR":
      return { type: "workdir", path: a };
    case "USER":
      return { type: "user", name: a };
    default:
      return bad(`${where}: step type ${s.type} is not supported (RUN, COPY, ENV, WORKDIR, USER are)`);
  }
}

/**
 * The E2B build-start body as a Wrenn build spec. Wrenn builds in its own VMs without Docker:
 * the base is the `base` image (E2B's `e2bdev/base`) or a template; other images are refused
 * with what is supported. A step marked `force` runs the whole build again (E2B forces from that
 * step on; a full rebuild is the conservative reading).
 */
export function e2bBuildSpec(body: E2bBuildStart): BuildSpecInput {
  if (body.fromImageRegistry !== undefined) {
    bad("fromImageRegistry: registry images cannot be built here; start from the base image or a template");
  }
  let from: BuildSpecInput["from"];
  if (body.fromTemplate) from = { template: body.fromTemplate };
  else if (!body.fromImage || E2B_BASE_IMAGES.has(body.fromImage)) from = { image: "base" };
  else {
    bad(
      `fromImage: "${body.fromImage}" cannot be built here (Wrenn builds in VMs without Docker); supported bases are fromBaseImage() (e2bdev/base, Debian bookworm) and fromTemplate(<a template of yours>)`,
    );
  }
  return {
    from,
    steps: body.steps.map(step),
    force: body.force || body.steps.some((s) => s.force === true),
    ...(body.startCmd ? { start_cmd: body.startCmd } : {}),
    ...(body.readyCmd ? { ready_cmd: body.readyCmd } : {}),
  };
}
