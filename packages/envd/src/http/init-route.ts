import type { IncomingMessage } from "node:http";
import { z } from "zod";
import { ACCESS_TOKEN_HEADER, isAccessTokenValid } from "../auth.js";
import type { EnvdContext } from "../context.js";
import { HttpError, type HttpRoute } from "./http-route.js";
import { headerValue } from "./request-auth.js";

/** Largest /init body accepted: env vars and a token, never more than this. */
const MAX_INIT_BODY_BYTES = 1024 * 1024;
/** The guest clock is set when it differs from the host's by more than this. */
const MAX_CLOCK_SKEW_MS = 50;

const InitBodySchema = z.looseObject({
  envVars: z.record(z.string(), z.string()).optional(),
  accessToken: z.string().optional(),
  timestamp: z.iso.datetime({ offset: true }).optional(),
  defaultUser: z.string().optional(),
  defaultWorkdir: z.string().optional(),
  /** Host randomness (base64, up to 512 bytes) mixed into the kernel RNG, which is then reseeded. */
  entropy: z.base64().max(700).optional(),
});
type InitBody = z.infer<typeof InitBodySchema>;

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body larger than ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function parseInitBody(req: IncomingMessage): Promise<InitBody> {
  const raw = await readBody(req, MAX_INIT_BODY_BYTES);
  if (raw.length === 0) return {};
  let json: unknown;
  try {
    json = JSON.parse(raw.toString("utf8"));
  } catch (err) {
    throw new HttpError(400, `failed to decode request: ${(err as Error).message}`);
  }
  const parsed = InitBodySchema.safeParse(json);
  if (!parsed.success) throw new HttpError(400, `failed to decode request: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/**
 * Runs /init's parsing once on a body with every field, so that V8 has compiled its
 * validators (regular expressions included) before a snapshot is taken: a restore's first
 * /init otherwise compiles them under TCG (~80 ms), on every create.
 */
export function warmInitParsing(): void {
  const sample = JSON.stringify({
    envVars: { A: "b" },
    accessToken: "warm-up",
    timestamp: new Date().toISOString(),
    defaultUser: "user",
    defaultWorkdir: "/home/user",
    entropy: Buffer.alloc(64, 1).toString("base64"),
  });
  const parsed = InitBodySchema.parse(JSON.parse(sample));
  if (parsed.entropy) Buffer.from(parsed.entropy, "base64");
  if (parsed.timestamp) Date.parse(parsed.timestamp);
}

/**
 * /init authenticates itself: once a token is set, the caller proves it knows it with
 * X-Access-Token or by sending that same token in the body (E2B's rule, minus MMDS).
 */
function authorizeInit(req: IncomingMessage, ctx: EnvdContext, body: InitBody): void {
  const current = ctx.state.accessToken;
  if (current === undefined || current === "") return;
  if (isAccessTokenValid(ctx.state, headerValue(req, ACCESS_TOKEN_HEADER))) return;
  if (body.accessToken !== undefined && isAccessTokenValid(ctx.state, body.accessToken)) return;
  throw new HttpError(401, "access token validation failed");
}

/**
 * Sets the system clock (after a snapshot restore it is wherever the snapshot left it).
 * Through the resident system helper: no process is spawned on this path.
 */
async function syncClock(ctx: EnvdContext, hostMs: number): Promise<void> {
  if (ctx.config.noVm) return; // A development host's clock is not ours to set.
  if (Math.abs(Date.now() - hostMs) <= MAX_CLOCK_SKEW_MS) return;
  try {
    await ctx.system.setClock(hostMs);
    ctx.logger.info("system clock set", { hostMs });
  } catch (err) {
    ctx.logger.error("failed to set system clock", { err });
  }
}

/**
 * Credits host randomness to the kernel's input pool and forces the CRNG to reseed from it.
 * A restored or cloned VM otherwise keeps producing the random stream its snapshot was in:
 * this kernel has no VM generation id to notice.
 */
async function reseedKernelRng(ctx: EnvdContext, entropy: Buffer): Promise<void> {
  if (ctx.config.noVm || entropy.length === 0) return; // A development host's RNG is not ours.
  try {
    await ctx.system.addEntropy(entropy);
  } catch (err) {
    ctx.logger.error("failed to reseed the kernel RNG", { err });
  }
}

/**
 * POST /init: env vars, access token, default user/workdir and the host's time, sent by
 * the host agent on create and after every resume. A request older than the newest one
 * applied is acknowledged but ignored (retries can arrive out of order). Answers 204.
 */
export const initRoute: HttpRoute = {
  method: "POST",
  path: "/init",
  auth: "route",
  async handle(req, res, _url, ctx) {
    const t0 = performance.now();
    const body = await parseInitBody(req);
    const t1 = performance.now();
    authorizeInit(req, ctx, body);
    const timestampMs = body.timestamp === undefined ? undefined : Date.parse(body.timestamp);
    const state = ctx.state;
    let systemMs = 0;
    if (timestampMs === undefined || timestampMs > state.lastInitTimestampMs) {
      if (timestampMs !== undefined) state.lastInitTimestampMs = timestampMs;
      // Both go down the helper's pipe back to back; neither throws.
      const clock = timestampMs === undefined ? undefined : syncClock(ctx, timestampMs);
      const rng = body.entropy ? reseedKernelRng(ctx, Buffer.from(body.entropy, "base64")) : undefined;
      await Promise.all([clock, rng]);
      systemMs = performance.now() - t1;
      if (body.envVars) state.envVars = { ...body.envVars };
      // As in E2B's envd, an applied /init without a token clears it.
      state.accessToken = body.accessToken === "" ? undefined : body.accessToken;
      if (body.defaultUser) state.defaultUser = body.defaultUser;
      if (body.defaultWorkdir) state.defaultWorkdir = body.defaultWorkdir;
    } else {
      ctx.logger.info("ignoring stale /init", { timestampMs, lastMs: state.lastInitTimestampMs });
    }
    // /snapshot/prepare stopped the port subsystem; a resume's /init brings it back.
    if (!ctx.config.noVm && !ctx.ports.running) await ctx.ports.restart();
    res.writeHead(204, { "cache-control": "no-store" }).end();
    // Time spent here, monotonic (the wall clock may just have been set): a restore waits on it.
    ctx.logger.info("init applied", {
      readMs: Math.round(t1 - t0),
      systemMs: Math.round(systemMs),
      totalMs: Math.round(performance.now() - t0),
    });
  },
};
