import { execFile } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import { isAbsolute, normalize } from "node:path";
import { promisify } from "node:util";
import { z } from "zod";
import { HttpError, type HttpRoute } from "./http-route.js";

const execFileAsync = promisify(execFile);

/** The volume server as every guest sees it: its gateway (the namespace redirects it to the host). */
export const VOLUME_SERVER = "169.254.0.22";
const MAX_BODY_BYTES = 64 * 1024;
const MOUNT_TIMEOUT_MS = 30_000;

const VolumeIdSchema = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/);
const MountBodySchema = z.object({
  mounts: z.array(z.object({ volumeId: VolumeIdSchema, path: z.string().min(1).max(4096) })).max(64),
});
const UnmountBodySchema = z.object({ paths: z.array(z.string().min(1).max(4096)).max(64) });

/**
 * `mount` arguments for a volume. util-linux's mount without mount.nfs hands the options to
 * the kernel as text, so the addresses and ports mount.nfs would find are given here:
 * NFSv3 over TCP on the standard ports of the gateway, `nolock` (no NLM: locks stay local to
 * each sandbox), `hard` (a server restart or a restore only delays calls, they are retried).
 */
export function nfsMountArgs(volumeId: string, path: string): string[] {
  const options = [
    "vers=3",
    "proto=tcp",
    "port=2049",
    "mountproto=tcp",
    "mountport=20048",
    "nolock",
    "hard",
    `addr=${VOLUME_SERVER}`,
    `mountaddr=${VOLUME_SERVER}`,
  ].join(",");
  return ["-t", "nfs", "-o", options, `${VOLUME_SERVER}:/v/${volumeId}`, path];
}

function checkPath(path: string): string {
  if (!isAbsolute(path)) throw new HttpError(400, `mount path ${JSON.stringify(path)} must be absolute`);
  const clean = normalize(path).replace(/\/+$/, "") || "/";
  if (clean === "/") throw new HttpError(400, "cannot mount a volume at /");
  return clean;
}

async function readJson(req: AsyncIterable<unknown>): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
  } catch (err) {
    throw new HttpError(400, `failed to decode request: ${(err as Error).message}`);
  }
}

/** Mount points of the guest (field 5 of mountinfo, octal escapes decoded). */
async function mountPoints(): Promise<Set<string>> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return new Set(
    text
      .split("\n")
      .map((l) => l.split(" ")[4] ?? "")
      .filter(Boolean)
      .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)))),
  );
}

async function run(file: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(file, args, { timeout: MOUNT_TIMEOUT_MS });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new HttpError(500, `${file} ${args.at(-1)}: ${(e.stderr || e.message).trim()}`, { cause: err });
  }
}

/**
 * POST /volumes/mount {mounts: [{volumeId, path}]}: mounts each volume at its path (made
 * when missing; a path that is already a mount point is left as it is). Called by the host
 * agent once a sandbox with volumes runs. Answers 204.
 */
export const volumeMountRoute: HttpRoute = {
  method: "POST",
  path: "/volumes/mount",
  async handle(req, res, _url, ctx) {
    const parsed = MountBodySchema.safeParse(await readJson(req));
    if (!parsed.success)
      throw new HttpError(400, `failed to decode request: ${z.prettifyError(parsed.error)}`);
    if (ctx.config.noVm) throw new HttpError(501, "volumes are mounted only inside a sandbox VM");
    const mounted = await mountPoints();
    for (const m of parsed.data.mounts) {
      const path = checkPath(m.path);
      if (mounted.has(path)) continue;
      await mkdir(path, { recursive: true });
      await run("mount", nfsMountArgs(m.volumeId, path));
      ctx.logger.info("volume mounted", { volumeId: m.volumeId, path });
    }
    res.writeHead(204, { "cache-control": "no-store" }).end();
  },
};

/** POST /volumes/unmount {paths}: unmounts each path that is a mount point. Answers 204. */
export const volumeUnmountRoute: HttpRoute = {
  method: "POST",
  path: "/volumes/unmount",
  async handle(req, res, _url, ctx) {
    const parsed = UnmountBodySchema.safeParse(await readJson(req));
    if (!parsed.success)
      throw new HttpError(400, `failed to decode request: ${z.prettifyError(parsed.error)}`);
    if (ctx.config.noVm) throw new HttpError(501, "volumes are mounted only inside a sandbox VM");
    const mounted = await mountPoints();
    for (const raw of parsed.data.paths) {
      const path = checkPath(raw);
      if (mounted.has(path)) await run("umount", [path]);
    }
    res.writeHead(204, { "cache-control": "no-store" }).end();
  },
};
